"""``python -m gluonx.kernels build [--force] [--verbose]`` compiles and caches the
kernel library; ``python -m gluonx.kernels status`` shows where it is."""
import argparse
import json
import sys
import time

from . import build, status


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m gluonx.kernels",
                                     description="Build or inspect the gluonx loss kernels.")
    parser.add_argument("command", choices=["build", "status"])
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    parser.add_argument("--verbose", action="store_true", help="print compiler commands")
    args = parser.parse_args(argv)
    if args.command == "build":
        start = time.time()
        path = build(force=args.force, verbose=args.verbose)
        print("gluonx kernels: %s (%.1f s)" % (path, time.time() - start))
    else:
        print(json.dumps(status(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
