"""Packaging for gluonx.

MXNet is deliberately *not* an install requirement: users already have the
build that fits their machine (``mxnet``, ``mxnet-mkl``, ``mxnet-cu112``, ...)
and pip would otherwise replace it with the CPU wheel, because every build
installs the same ``mxnet`` package under a different distribution name.
``pip install gluonx[cpu]`` adds the CPU wheel for machines that have none;
``import gluonx`` says what to install when no mxnet can be imported.
"""
import os
import re

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def read_version():
    with open(os.path.join(HERE, "gluonx", "__init__.py"), encoding="utf-8") as f:
        return re.search(r'^__version__ = "([^"]+)"', f.read(), re.M).group(1)


def read_readme():
    path = os.path.join(HERE, "README.md")
    if not os.path.exists(path):
        return ""
    with open(path, encoding="utf-8") as f:
        return f.read()


MATPLOTLIB = "matplotlib>=3.5"
EXTRAS = {
    # The CPU build of MXNet, for machines that have no MXNet yet.
    "cpu": ["mxnet==1.9.1"],
    # The test suite. The torch oracle tests also need torch==2.13.0, which CI
    # installs on its own (Python 3.11 only); they skip without it.
    "test": ["pytest>=7", "hypothesis>=6", "nbclient>=0.7", "nbformat>=5", "ipykernel>=6",
             MATPLOTLIB],
    # myst-nb executes the notebooks into pages; sphinx-mathjax-offline ships
    # MathJax with the site (formulas render without internet)
    "docs": ["sphinx>=6", "myst-parser>=1", "myst-nb>=1", "sphinx-mathjax-offline>=0.0.2",
             "ipykernel>=6", "tqdm>=4", MATPLOTLIB],
    "demo": ["tqdm>=4", MATPLOTLIB],
}

setup(
    name="gluonx",
    version=read_version(),
    description="Hybridizable, bug-fixed loss blocks for Apache MXNet Gluon "
                "(a drop-in superset of mxnet.gluon.loss)",
    long_description=read_readme(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    packages=find_packages(include=["gluonx", "gluonx.*"]),
    package_data={"gluonx.kernels": ["*.cc", "*.h"]},
    include_package_data=False,
    python_requires=">=3.8",
    # numpy only: mxnet 1.9.1 does not work with numpy 2.
    install_requires=["numpy>=1.16,<2"],
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["gluonx-demo=gluonx.demo:main",
                                      "gluonx-dist=gluonx.dist:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
    zip_safe=False,
)
