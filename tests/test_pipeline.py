"""The whole audio chain: raw audio files -> spectrograms -> patches -> train -> predict -> evaluate."""

import json

import h5py
import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix

from tartarus.audio.patches import create_patches
from tartarus.audio.runner import compute_spectrograms
from tartarus.cli import main
from tartarus.config import Registry
from tartarus.datasets.dummy import generate_dummy
from tartarus.fileio import load_npy, read_lines
from tartarus.layout import SETS, DataLayout
from tartarus.pipeline import run_experiment as run  # train -> predict -> evaluate


def test_dummy_audio_learns(tmp_path):
    """dummy_audio, as `make run` runs it, clearly beats chance (1/3) on the 12 test items."""
    layout = DataLayout(tmp_path / "data")
    generate_dummy(layout.root, seed=0)
    reg = Registry()
    entry = reg.dataset("DUMMY")
    report = compute_spectrograms(layout, entry, progress=False)
    assert report.failed == [] and report.done == 60
    create_patches(layout, entry)
    result = run(reg.experiment("dummy_audio"), (), layout, verbose=0)
    accuracy = result.results["test"]["accuracy"]
    assert accuracy >= 0.75, f"dummy_audio test accuracy {accuracy:.3f}"

    # -l 9: the pre-softmax output, per item, aligned with the split
    assert main(["predict", result.model_id, "-p", "-l", "9", "-s", "test", "--data-dir", str(layout.root)]) == 0
    x = load_npy(layout.x("test", f"{result.model_id}-pred_9", "DUMMY"))
    ids = read_lines(layout.items_index("test", "DUMMY", f"{result.model_id}-pred_9"))
    assert x.shape == (12, 3) and ids == read_lines(layout.items_index("test", "DUMMY"))
    probs = load_npy(layout.prediction(result.model_id, "test"))
    e = np.exp(x - x.max(axis=1, keepdims=True))  # one patch an item: softmax(logits) == outputs
    assert np.allclose(e / e.sum(axis=1, keepdims=True), probs, atol=1e-4)


def test_super_chain_on_real_songs(super_root, capsys):
    """The real SUPER songs through every stage, by the seed's commands; outputs consistent."""
    root = str(super_root)
    layout = DataLayout(super_root)
    assert main(["spectrograms", "SUPER", "--data-dir", root]) == 0
    assert main(["patches", "SUPER", "--data-dir", root]) == 0
    for set_ in SETS:
        with h5py.File(layout.patches(set_, "SUPER", 1, 15), "r") as f:
            assert f["features"].shape == (3, 322, 96, 1)
            assert [s.decode() for s in f["index"][:]] == read_lines(layout.items_index(set_, "SUPER"))
            assert np.isfinite(f["features"][:]).all()
    assert main(["run", "super_audio", "--data-dir", root, "--set", "training.n_epochs=2"]) == 0
    out = capsys.readouterr().out
    assert "accuracy" in out
    for set_ in SETS:
        assert main(["predict", "model_1", "-p", "-l", "9", "-s", set_, "--data-dir", root]) == 0
        x = load_npy(layout.x(set_, "model_1-pred_9", "SUPER"))
        assert x.shape == (3, 3) and np.isfinite(x).all()
        assert read_lines(layout.items_index(set_, "SUPER", "model_1-pred_9")) == read_lines(layout.items_index(set_, "SUPER"))
    assert main(["evaluate", "model_1", "-s", "test", "-s", "val", "--data-dir", root]) == 0
    result = json.loads(layout.result("model_1", "test").read_text())
    assert result["n_items"] == 3
    # the reported figures are those of the saved predictions against the split's labels
    probs = load_npy(layout.prediction("model_1", "test"))
    assert read_lines(layout.prediction_index("model_1", "test")) == read_lines(layout.items_index("test", "SUPER"))
    y = load_npy(layout.y("test", result["extra"]["fact"], result["extra"]["dim"], "SUPER")).argmax(axis=1)
    assert not np.allclose(probs, probs[0])  # one row per song, not one answer for all
    assert result["accuracy"] == pytest.approx(accuracy_score(y, probs.argmax(axis=1)))
    assert np.array_equal(result["confusion_matrix"],
                          confusion_matrix(y, probs.argmax(axis=1), labels=range(result["extra"]["dim"])))
