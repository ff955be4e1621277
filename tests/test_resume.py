"""``--resume`` keeps its word: overrides applied or refused, finished models left alone, the
uninterrupted run's path continued, unfinished model folders listed and cleaned (issue 11, item 2)."""

import json

import numpy as np
import pytest

import tartarus.train as train_mod
from tartarus.cli import main
from tartarus.config import Registry
from tartarus.errors import ConfigError, MissingInput
from tartarus.fileio import read_tsv
from tartarus.inputs import VectorDataset
from tartarus.predict import predict
from tartarus.store import clean_models, hold_model, unfinished_models
from tartarus.train import epoch_seed, run
from tests.conftest import run_on_backend


def _tiny(experiments_dir, *sets):
    return Registry(experiments_dir).experiment("tiny", list(sets))


def _killed_after(monkeypatch, epochs):
    """Make the next run raise KeyboardInterrupt once ``epochs`` epochs are checkpointed."""
    original = train_mod.EpochCheckpoint

    class Killed(original):
        def on_epoch_end(self, epoch, logs=None):
            super().on_epoch_end(epoch, logs)
            if epoch + 1 == epochs:
                raise KeyboardInterrupt

    monkeypatch.setattr(train_mod, "EpochCheckpoint", Killed)
    return lambda: monkeypatch.setattr(train_mod, "EpochCheckpoint", original)


def _rows(layout):
    return read_tsv(layout.trained_models())[1:]


def test_resume_continues_the_uninterrupted_path(tiny_layout, experiments_dir, monkeypatch):
    # 4 epochs straight through, against 2 epochs, a kill, and a resume for the last 2
    whole = run(_tiny(experiments_dir, "training.n_epochs=4"), (), tiny_layout, verbose=0)
    restore = _killed_after(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        run(_tiny(experiments_dir, "training.n_epochs=4"), (), tiny_layout, verbose=0)
    restore()
    resumed = run(None, (), tiny_layout, resume="model_2", verbose=0)
    assert resumed.epochs == 4 and len(resumed.history["val_loss"]) == 4
    np.testing.assert_allclose(resumed.history["val_loss"], whole.history["val_loss"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(resumed.history["loss"], whole.history["loss"], rtol=1e-4, atol=1e-6)


def test_resume_with_more_epochs_matches_a_longer_run(tiny_layout, experiments_dir, capsys):
    # a finished 2-epoch model trained on to 4 follows the 4-epoch run, and keeps one row in the index
    whole = run(_tiny(experiments_dir, "training.n_epochs=4"), (), tiny_layout, verbose=0)
    short = run(_tiny(experiments_dir, "training.n_epochs=2"), (), tiny_layout, verbose=0)
    assert main(["run", "-", "--resume", short.model_id, "--set", "training.n_epochs=4",
                 "--data-dir", str(tiny_layout.root), "--experiments", str(experiments_dir), "--no-eval"]) == 0
    out = capsys.readouterr().out
    assert f"{short.model_id}: resuming with training.n_epochs = 4 (was 2)" in out
    history = json.loads(tiny_layout.history(short.model_id).read_text())
    np.testing.assert_allclose(history["val_loss"], whole.history["val_loss"], rtol=1e-4, atol=1e-6)
    rows = _rows(tiny_layout)
    assert [r[0] for r in rows] == ["model_1", "model_2"] and rows[1][4] == "4"
    # the override is kept in the model's config: a later resume sees n_epochs = 4
    saved = json.loads(tiny_layout.model_config(short.model_id).read_text())
    assert saved["experiment"]["training"]["n_epochs"] == 4
    assert saved["resume_overrides"] == [{"at_epoch": 2, "training.n_epochs": 4}]


def test_resume_refuses_keys_that_cannot_change(tiny_layout, experiments_dir, capsys):
    run(_tiny(experiments_dir, "training.n_epochs=2"), (), tiny_layout, verbose=0)
    before = tiny_layout.model_config("model_1").read_text()
    with pytest.raises(ConfigError, match=r"training\.learning_rate cannot change mid-run"):
        run(None, (), tiny_layout, resume="model_1", verbose=0,
            overrides=["training.n_epochs=3", "training.learning_rate=0.1"])
    code = main(["run", "-", "--resume", "model_1", "--set", "cnn.n_filters_1=4",
                 "--data-dir", str(tiny_layout.root), "--experiments", str(experiments_dir)])
    err = capsys.readouterr().err
    assert code == 2 and "cnn.n_filters_1 cannot change mid-run" in err and len(err.strip().splitlines()) == 1
    assert tiny_layout.model_config("model_1").read_text() == before  # nothing persisted
    # restating the saved value is no change; fewer epochs than trained is refused
    result = run(None, (), tiny_layout, resume="model_1", verbose=0,
                 overrides=["training.learning_rate=0.003"])
    assert result.nothing_to_do
    with pytest.raises(ConfigError, match="already trained"):
        run(None, (), tiny_layout, resume="model_1", verbose=0, overrides=["training.n_epochs=1"])


def test_resume_applies_patience(tiny_layout, experiments_dir):
    exp = _tiny(experiments_dir, "training.n_epochs=30", "training.patience=1", "training.learning_rate=2.0",
                "training.monitor=val_loss")
    first = run(exp, (), tiny_layout, verbose=0)
    assert first.epochs < 30
    state = json.loads(tiny_layout.training_state("model_1").read_text())
    assert state["stopped"] and state["wait"] == 1
    # more patience: the stopped run trains on from where it stopped
    more = run(None, (), tiny_layout, resume="model_1", verbose=0,
               overrides=["training.patience=3"])
    assert not more.nothing_to_do and more.epochs > first.epochs
    assert more.history["val_loss"][:first.epochs] == first.history["val_loss"]
    assert len(_rows(tiny_layout)) == 1


def test_resuming_a_finished_model_does_nothing(tiny_layout, experiments_dir, capsys):
    run(_tiny(experiments_dir, "training.n_epochs=2"), (), tiny_layout, verbose=0)
    rows = _rows(tiny_layout)
    weights = tiny_layout.model_file("model_1").read_bytes()
    assert main(["run", "-", "--resume", "model_1", "--data-dir", str(tiny_layout.root),
                 "--experiments", str(experiments_dir)]) == 0
    out = capsys.readouterr().out
    assert "model_1: finished after 2 epoch(s) (training.n_epochs = 2); nothing to do" in out
    assert "done after" not in out
    assert _rows(tiny_layout) == rows  # no duplicate row
    assert tiny_layout.model_file("model_1").read_bytes() == weights


def test_interrupted_model_is_listed_and_errors_suggest_resume(tiny_layout, experiments_dir, monkeypatch, capsys):
    run(_tiny(experiments_dir, "training.n_epochs=1"), (), tiny_layout, verbose=0)
    restore = _killed_after(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        run(_tiny(experiments_dir, "training.n_epochs=3"), (), tiny_layout, verbose=0)
    restore()
    assert main(["models", "--data-dir", str(tiny_layout.root)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("model_1\ttiny\tTINY")
    resume = f"tartarus run - --resume model_2 --data-dir {tiny_layout.root}"
    assert lines[1] == f"model_2\tinterrupted after 1 of 3 epoch(s)\tresume: {resume}"
    with pytest.raises(MissingInput) as exc:
        predict(tiny_layout, "model_2", ["test"])
    assert "interrupted after 1 of 3 epoch(s)" in str(exc.value) and resume in str(exc.value)
    # a folder in use by a run is listed as running
    fd = hold_model(tiny_layout, "model_2")
    try:
        assert [u["status"] for u in unfinished_models(tiny_layout)] == ["running"]
    finally:
        import os
        os.close(fd)


def test_run_killed_before_its_first_epoch_is_listed_and_cleaned(tiny_layout, experiments_dir, monkeypatch,
                                                                 capsys):
    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_mod, "seed_epoch", killed)
    with pytest.raises(KeyboardInterrupt):
        run(_tiny(experiments_dir), (), tiny_layout, verbose=0)
    monkeypatch.undo()
    assert tiny_layout.model_dir("model_1").is_dir() and not tiny_layout.checkpoint("model_1").exists()
    assert main(["models", "--data-dir", str(tiny_layout.root)]) == 0
    out = capsys.readouterr().out
    assert f"model_1\tempty (stopped before its first epoch)\tremove: tartarus models --clean --data-dir " \
           f"{tiny_layout.root}" in out
    # an interrupted model with a checkpoint is never removed
    restore = _killed_after(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        run(_tiny(experiments_dir), (), tiny_layout, verbose=0)
    restore()
    assert main(["models", "--clean", "--data-dir", str(tiny_layout.root)]) == 0
    out = capsys.readouterr().out
    assert out == f"removed {tiny_layout.model_dir('model_1')} (stopped before its first epoch: no checkpoint, " \
                  f"no model.keras)\n"
    assert not tiny_layout.model_dir("model_1").exists() and tiny_layout.checkpoint("model_2").exists()
    assert clean_models(tiny_layout) == []


def test_epoch_order_depends_on_seed_and_epoch_only():
    x, y = np.arange(20, dtype=np.float32)[:, None], np.zeros((20, 1), np.float32)
    a, b = VectorDataset([x], y, batch_size=5, seed=0), VectorDataset([x], y, batch_size=5, seed=0)
    for _ in range(3):  # a's epochs so far differ from b's: the order of epoch 3 does not
        a.on_epoch_end()
    a.start_epoch(epoch_seed(7, 3))
    b.start_epoch(epoch_seed(7, 3))
    assert np.array_equal(a.order, b.order) and sorted(a.order) == list(range(20))
    assert epoch_seed(7, 3) != epoch_seed(7, 4) and epoch_seed(7, 3) != epoch_seed(8, 3)


BACKEND_RESUME = r"""
import json, shutil, sys
from pathlib import Path
from tests.conftest import TINY_EXPERIMENTS, write_tiny_dataset
from tartarus.config import Registry
import tartarus.train as T
root = Path(sys.argv[1])
(root / "exp").mkdir()
(root / "exp" / "tiny.toml").write_text(TINY_EXPERIMENTS)
shutil.copy("experiments/datasets.toml", root / "exp" / "datasets.toml")
lay = write_tiny_dataset(root / "data")
reg = Registry(root / "exp")
array_feed = T.fit_arguments
for feed in ("arrays", "pydataset"):  # in-memory patches go to Keras as arrays; other feeds as a PyDataset
    T.fit_arguments = array_feed if feed == "arrays" else (lambda ds: {"x": ds})
    whole = T.run(reg.experiment("tiny", ["training.n_epochs=3"]), (), lay, verbose=0)
    short = T.run(reg.experiment("tiny", ["training.n_epochs=1"]), (), lay, verbose=0)
    resumed = T.run(None, (), lay, resume=short.model_id, verbose=0,
                    overrides=["training.n_epochs=3"])
    print(json.dumps({"feed": feed, "whole": whole.history["val_loss"], "resumed": resumed.history["val_loss"]}))
"""


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_resume_continues_the_path_on_other_backends(backend, tmp_path):
    for report in run_on_backend(backend, BACKEND_RESUME, tmp_path, timeout=400):
        np.testing.assert_allclose(report["resumed"], report["whole"], rtol=1e-4, atol=1e-6, err_msg=report["feed"])
