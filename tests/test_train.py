import json

import h5py
import keras
import numpy as np
import pytest

from tartarus.config import Registry
from tartarus.errors import ConfigError, DataMismatch, MissingInput
from tartarus.fileio import load_npy, read_lines
from tartarus.inputs import read_patch_index
from tartarus.models import indexable_layers, load_model, resolve_layer
from tartarus.predict import aggregate_by_item, predict
from tartarus.pipeline import run_experiment
from tartarus.train import run


class Interrupt(keras.callbacks.Callback):
    """Simulates a run killed after a given epoch."""

    def __init__(self, after):
        super().__init__()
        self.after = after

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.after:
            raise KeyboardInterrupt


def test_train_predict_and_model_folder(tiny_layout, experiments_dir):
    exp = Registry(experiments_dir).experiment("tiny", ["training.n_epochs=6"])
    result = run(exp, (), tiny_layout, verbose=0)
    lay, mid = tiny_layout, result.model_id
    assert mid == "model_1"
    for path in (lay.model_file(mid), lay.model_config(mid), lay.history(mid), lay.manifest(mid),
                 lay.training_curve(mid), lay.trained_models()):
        assert path.exists(), path
    # training neither predicts nor evaluates (pipeline.run_experiment does)
    assert not lay.predictions_dir.exists() and not lay.results_dir.exists() and result.results == {}
    manifest = json.loads(lay.manifest(mid).read_text())
    assert manifest["seed"] == exp.training.random_seed and "keras" in manifest["versions"]
    assert {"bytes", "sha256"} <= set(manifest["inputs"][0])
    history = json.loads(lay.history(mid).read_text())
    assert len(history["loss"]) == result.epochs == 6
    assert history["loss"][-1] < history["loss"][0]

    # layer 9 of architecture 1 with two blocks is the pre-softmax dense layer
    model = load_model(lay.model_file(mid))
    assert resolve_layer(model, 9).name == "logits"
    assert resolve_layer(model, "flat") is indexable_layers(model)[8]
    written = predict(lay, mid, ["train", "test"], layer=9)
    x = load_npy(lay.x("test", "model_1-pred_9", "TINY"))
    ids = read_lines(lay.items_index("test", "TINY", "model_1-pred_9"))
    assert x.shape == (3, 3) and ids == read_lines(lay.items_index("test", "TINY"))
    assert written[0][3].values.shape == (12, 3)
    # an item's outputs are the mean of its patches' softmax outputs: checked against keras directly
    out = predict(lay, mid, ["test"])[0]
    probs = load_npy(lay.prediction(mid, "test"))
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    patches_path = lay.patches("test", "TINY", exp.dataset.npatches, exp.dataset.window)
    with h5py.File(patches_path, "r") as f:
        features = f["features"][:]
    patch_ids = read_patch_index(patches_path)
    per_patch = np.asarray(model.predict(features.reshape(len(features), *model.inputs[0].shape[1:]), verbose=0))
    expected = np.stack([per_patch[[j for j, p in enumerate(patch_ids) if p == item]].mean(axis=0) for item in ids])
    assert len(set(patch_ids)) == len(ids) < len(patch_ids)  # several patches an item: the mean is exercised
    assert np.allclose(probs, expected, atol=1e-5)
    assert read_lines(lay.prediction_index(mid, "test")) == ids
    assert out[3].missing_items == []
    # -p (the seed's "from patches files") is what an audio model does anyway; not with whole tracks
    assert np.array_equal(predict(lay, mid, ["test"], patches=True)[0][3].values, out[3].values)
    with pytest.raises(ConfigError, match="exclude each other"):
        predict(lay, mid, ["test"], patches=True, full_track=True)


def test_training_is_reproducible(tiny_layout, experiments_dir):
    exp = Registry(experiments_dir).experiment("tiny", ["training.n_epochs=2"])
    a = run(exp, (), tiny_layout, verbose=0)
    b = run(exp, (), tiny_layout, verbose=0)
    assert a.model_id != b.model_id
    assert np.allclose(a.history["loss"], b.history["loss"], rtol=1e-4)


def test_resume_continues_an_interrupted_run(tiny_layout, experiments_dir, monkeypatch):
    exp = Registry(experiments_dir).experiment("tiny", ["training.n_epochs=5"])
    import tartarus.train as train_mod
    original = train_mod.EpochCheckpoint

    class Killed(original):
        def on_epoch_end(self, epoch, logs=None):
            super().on_epoch_end(epoch, logs)
            if epoch + 1 == 2:
                raise KeyboardInterrupt

    monkeypatch.setattr(train_mod, "EpochCheckpoint", Killed)
    with pytest.raises(KeyboardInterrupt):
        run(exp, (), tiny_layout, verbose=0)
    lay = tiny_layout
    assert not lay.model_file("model_1").exists()  # no final model from a killed run
    state = json.loads(lay.training_state("model_1").read_text())
    assert state["epoch"] == 2 and len(state["history"]["loss"]) == 2

    monkeypatch.setattr(train_mod, "EpochCheckpoint", original)
    result = run(None, (), lay, resume="model_1", verbose=0)
    assert result.model_id == "model_1" and result.epochs == 5
    assert len(result.history["loss"]) == 5
    assert result.history["loss"][:2] == state["history"]["loss"]
    assert lay.model_file("model_1").exists()


def test_early_stopping_restores_best(tiny_layout, experiments_dir):
    exp = Registry(experiments_dir).experiment("tiny", ["training.n_epochs=30", "training.patience=1",
                                                        "training.learning_rate=2.0", "training.monitor=val_loss",
                                                        "training.restore_best=True"])
    result = run(exp, (), tiny_layout, verbose=0)
    val = result.history["val_loss"]
    assert result.epochs < 30
    assert result.best == pytest.approx(min(val))


def test_missing_patches_name_path_and_command(tiny_layout, experiments_dir):
    exp = Registry(experiments_dir).experiment("tiny", ["dataset.window=3"])
    with pytest.raises(MissingInput) as exc:
        run(exp, (), tiny_layout, verbose=0)
    msg = str(exc.value)
    assert "patches_train_TINY_2x3.hdf5" in msg and "tartarus patches TINY --npatches 2 --window 3" in msg


def test_targets_must_match_items_index(tiny_layout, experiments_dir):
    y = np.load(tiny_layout.y("train", "class", 3, "TINY"))
    np.save(tiny_layout.y("train", "class", 3, "TINY"), y[:-1])
    exp = Registry(experiments_dir).experiment("tiny")
    with pytest.raises(DataMismatch, match=r"y_train_class_3_TINY.npy has 11 rows but .*items_index_train_TINY.tsv lists 12"):
        run(exp, (), tiny_layout, verbose=0)


def test_bad_layer_is_a_clear_error(tiny_layout, experiments_dir):
    exp = Registry(experiments_dir).experiment("tiny", ["training.n_epochs=1"])
    mid = run(exp, (), tiny_layout, verbose=0).model_id
    with pytest.raises(ConfigError, match=r"layer index 42 out of range.*9:logits"):
        predict(tiny_layout, mid, ["test"], layer=42)
    with pytest.raises(ConfigError, match="no layer named 'nope'"):
        predict(tiny_layout, mid, ["test"], layer="nope")


def test_aggregation_by_item():
    values = np.array([[1.0], [3.0], [10.0], [2.0], [5.0]])
    rows = np.array([2, 0, 2, 0, 2])  # item 1 has no patch
    present, mean = aggregate_by_item(values, rows, 3, "mean")
    assert present.tolist() == [0, 2] and np.allclose(mean[:, 0], [2.5, 16 / 3])
    assert aggregate_by_item(values, rows, 3, "max")[1][:, 0].tolist() == [3.0, 10.0]
    assert aggregate_by_item(values, rows, 3, "median")[1][:, 0].tolist() == [2.5, 5.0]


def test_run_evaluates_and_writes_results(tiny_layout, experiments_dir):
    import json as _json
    exp = Registry(experiments_dir).experiment("tiny", ["training.n_epochs=8"])
    result = run_experiment(exp, (), tiny_layout, verbose=0)
    lay, mid = tiny_layout, result.model_id
    res = result.results["test"]
    saved = _json.loads(lay.result(mid, "test").read_text())
    assert saved["accuracy"] == pytest.approx(res["accuracy"])
    # the figure matches the predictions written beside it
    probs = load_npy(lay.prediction(mid, "test"))
    y = np.load(lay.y("test", "class", 3, "TINY"))
    assert res["accuracy"] == pytest.approx(np.mean(probs.argmax(1) == y.argmax(1)))
    assert res["accuracy"] > 0.6  # the tiny classes are separable
    assert lay.confusion_plot(mid, "test").exists()
    table = lay.results_table().read_text().splitlines()
    assert len(table) == 2 and table[1].startswith(mid)


def test_validation_held_out_from_train(tiny_layout, experiments_dir):
    exp = Registry(experiments_dir).experiment("tiny", ["training.n_epochs=2", "training.val_from_file=False",
                                                        "training.validation=0.25"])
    from tartarus.train import load_split, make_dataset
    train, val = load_split(tiny_layout, exp, "train").hold_out(0.25, 0)
    assert len(train.item_ids) == 9 and len(val.item_ids) == 3
    assert not set(train.item_ids) & set(val.item_ids)
    ds = make_dataset(val, exp, shuffle=False, seed=0)
    assert len(ds.targets) == 3 * 2  # two patches an item
    x, y = ds[0]
    assert x.shape[1:] == (21, 16, 1)
    result = run(exp, (), tiny_layout, verbose=0)
    assert len(result.history["val_loss"]) == 2


def test_item_without_patches_is_reported_not_shifted(tiny_layout, experiments_dir):
    exp = Registry(experiments_dir).experiment("tiny", ["training.n_epochs=1"])
    mid = run(exp, (), tiny_layout, verbose=0).model_id
    lay = tiny_layout
    ids = read_lines(lay.items_index("test", "TINY"))
    lay.items_index("test", "TINY").write_text("\n".join([ids[0], "GHOST", *ids[1:]]))
    y = np.load(lay.y("test", "class", 3, "TINY"))
    np.save(lay.y("test", "class", 3, "TINY"), np.vstack([y[:1], np.eye(3)[:1], y[1:]]))
    with pytest.warns(UserWarning, match="GHOST"):
        (_, out, index, result), = predict(lay, mid, ["test"], layer="logits")
    assert result.missing_items == ["GHOST"]
    assert read_lines(index) == ids and load_npy(out).shape == (3, 3)
    # each remaining row is its own item's: same values as predicting without the ghost
    lay.items_index("test", "TINY").write_text("\n".join(ids))
    (_, out2, _, _), = predict(lay, mid, ["test"], layer="logits")
    assert np.allclose(load_npy(out), load_npy(out2))


def test_training_curve_leaves_the_matplotlib_backend_alone(tmp_path, monkeypatch):
    """plot_history draws on a bare Figure: a notebook's pyplot backend is not switched."""
    import matplotlib

    from tartarus.train import plot_history

    def refuse(*args, **kwargs):
        raise AssertionError("matplotlib.use called by the library")

    monkeypatch.setattr(matplotlib, "use", refuse)
    path = tmp_path / "curve.png"
    plot_history({"loss": [1.0, 0.5, 0.25], "val_loss": [1.1, 0.7, 0.6], "accuracy": [0.3, 0.6, 0.9]}, path, "t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
