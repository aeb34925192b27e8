"""The numpy-ml models rebuilt in Gluon (examples/vae.py, wgan_gp.py, word2vec.py)
run end to end in a short configuration: the loss falls by a stated factor, the
pictures are written, and the exported model re-imports (checked inside)."""
import os
import sys

import numpy as np
import pytest

pytest.importorskip("tqdm", reason="the examples show a tqdm progress bar (gluonx[demo])")
pytest.importorskip("matplotlib", reason="the examples plot with matplotlib")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "examples"))

import vae  # noqa: E402
import wgan_gp  # noqa: E402
import word2vec  # noqa: E402


def _pngs_written(paths):
    for name, path in paths.items():
        assert os.path.getsize(path) > 1000, (name, path)


def test_vae_negative_elbo_halves(tmp_path):
    result = vae.main(["--steps", "300", "--out", str(tmp_path), "--no-progress"])
    history = result["history"]
    assert history[-30:].mean() < history[:30].mean() / 2, (history[:30].mean(),
                                                             history[-30:].mean())
    _pngs_written(result["paths"])
    assert os.path.exists(result["export"] + "-symbol.json")


def test_vae_shapes_are_binary_and_varied():
    images, kinds = vae.draw_shapes(200, seed=1)
    assert images.shape == (200, vae.SIDE * vae.SIDE)
    assert set(np.unique(images)) == {0.0, 1.0}
    assert len(set(kinds)) == 5 and (images.sum(axis=1) > 4).all()


def test_wgan_generator_moves_onto_the_modes(tmp_path):
    result = wgan_gp.main(["--steps", "100", "--out", str(tmp_path), "--no-progress"])
    distance = result["history"]["mode_distance"]
    first, last = distance[0][1], distance[-1][1]
    assert last < first / 2, (first, last)
    w = result["history"]["wasserstein"]
    assert np.all(np.isfinite(w)) and w[-10:].mean() < w.max() / 2, (w.max(), w[-10:].mean())
    _pngs_written({k: v for k, v in result["paths"].items()})


def test_word2vec_nce_loss_falls_and_neighbours_share_their_kind(tmp_path):
    result = word2vec.main(["--steps", "600", "--out", str(tmp_path), "--no-progress"])
    history = result["history"]
    assert history[-50:].mean() < history[:50].mean() / 3, (history[:50].mean(),
                                                            history[-50:].mean())
    assert word2vec.kind_accuracy(result["table"]) > 0.5
    assert os.path.getsize(result["paths"]["projection"]) > 1000
    with open(result["paths"]["neighbours"]) as f:
        assert "| monday |" in f.read()


def test_the_corpus_ships_and_is_small():
    size = os.path.getsize(word2vec.CORPUS)
    assert 5_000 < size < 100_000, size
    sentences, vocab, counts = word2vec.load_corpus()
    assert len(vocab) > 80 and counts.sum() > 10_000
