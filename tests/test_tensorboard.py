"""TensorBoard logs of a training run (``training.tensorboard``, ``tartarus run --tensorboard``; issue 15).

Training fits one epoch at a time (train.py), so the logs must still hold one ``epoch_loss`` per
epoch at steps 0, 1, ... and a resume must add the next epochs after them. They are read back with
TensorBoard's own EventAccumulator and compared with the run's history.
"""

import importlib.util

import numpy as np
import pytest

from tartarus.cli import main
from tartarus.errors import ConfigError
from tartarus.fileio import read_json
from tartarus.store import read_record
from tartarus.train import run

from .conftest import run_on_backend
from .test_protocol import vector_experiment, write_vector_dataset

pytest.importorskip("tensorboard", reason="tensorboard is not installed (pip install -e '.[tensorboard]')")


def epoch_scalars(logdir, tag="epoch_loss"):
    """``{"train": [(step, value), ...], "validation": [...]}`` of ``tag`` in a model's TensorBoard logs."""
    from tensorboard.backend.event_processing.event_accumulator import TENSORS, EventAccumulator
    from tensorboard.util.tensor_util import make_ndarray
    out = {}
    for part in ("train", "validation"):
        acc = EventAccumulator(str(logdir / part), size_guidance={TENSORS: 0})  # 0: keep every event
        acc.Reload()
        if tag in acc.Tags()["tensors"]:
            out[part] = [(e.step, float(make_ndarray(e.tensor_proto))) for e in acc.Tensors(tag)]
    return out


def _steps_and_values(pairs):
    return [s for s, _ in pairs], [v for _, v in pairs]


def test_one_epoch_loss_per_epoch_and_a_resume_appends(tmp_path):
    layout = write_vector_dataset(tmp_path / "data")
    experiment = vector_experiment(training={"n_epochs": 2, "early_stopping": False, "tensorboard": True})
    first = run(experiment, ("emb",), layout, verbose=0)
    logdir = layout.tensorboard_dir(first.model_id)
    assert logdir == layout.root / "models" / "model_1" / "tensorboard"
    scalars = epoch_scalars(logdir)
    steps, values = _steps_and_values(scalars["train"])
    assert steps == [0, 1]
    np.testing.assert_allclose(values, first.history["loss"], rtol=1e-6)
    steps, values = _steps_and_values(scalars["validation"])
    assert steps == [0, 1]
    np.testing.assert_allclose(values, first.history["val_loss"], rtol=1e-6)
    files = {p for p in logdir.rglob("events.out.tfevents.*")}
    seconds = read_json(layout.training_state(first.model_id))["epoch_seconds"]
    assert len(seconds) == 2

    more = run(None, (), layout, resume=first.model_id, verbose=0, overrides=["training.n_epochs=3"])
    assert more.epochs == 3
    scalars = epoch_scalars(logdir)
    steps, values = _steps_and_values(scalars["train"])
    assert steps == [0, 1, 2]  # appended after the first run's epochs, none restarted at 0
    np.testing.assert_allclose(values, more.history["loss"], rtol=1e-6)
    assert _steps_and_values(scalars["validation"])[0] == [0, 1, 2]
    assert files < {p for p in logdir.rglob("events.out.tfevents.*")}  # the first run's files are kept
    # the resumed run extends the epoch times
    again = read_json(layout.training_state(first.model_id))["epoch_seconds"]
    assert again[:2] == seconds and len(again) == 3 and again[2] > 0
    assert "epoch_seconds" not in read_json(layout.history(first.model_id))


VEC_EXPERIMENTS = """
[vec]
dataset = { dataset = "V", fact = "class", dim = 3, evaluation = "multiclass" }
training = { n_epochs = 1, n_minibatch = 8, loss_func = "categorical_crossentropy", learning_rate = 0.05 }
cnn = { architecture = "3", n_dense = 0, n_dense_2 = 0, dropout_factor = 0.0, final_activation = "softmax" }
"""


def test_run_flag_sets_the_key(tmp_path, capsys):
    layout = write_vector_dataset(tmp_path / "data")
    experiments = tmp_path / "experiments"
    experiments.mkdir()
    (experiments / "vec.toml").write_text(VEC_EXPERIMENTS)
    common = ["--data-dir", str(layout.root), "--experiments", str(experiments)]
    assert main(["run", "vec", "emb", "--tensorboard", "--no-eval", *common]) == 0
    assert f"TensorBoard logs in {layout.tensorboard_dir('model_1')}" in capsys.readouterr().out
    assert main(["run", "vec", "emb", "--no-eval", *common]) == 0
    assert read_record(layout, "model_1").experiment["training"]["tensorboard"] is True
    assert read_record(layout, "model_2").experiment["training"]["tensorboard"] is False
    assert _steps_and_values(epoch_scalars(layout.tensorboard_dir("model_1"))["train"])[0] == [0]
    assert not layout.tensorboard_dir("model_2").exists()  # off by default


def test_missing_tensorboard_is_a_config_error_before_any_model(tmp_path, monkeypatch):
    layout = write_vector_dataset(tmp_path / "data")
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard"
                        else find_spec(name, *a))
    with pytest.raises(ConfigError, match=r"training.tensorboard = true .* need tensorboard, not installed .*"
                                          r"pip install tensorboard"):
        run(vector_experiment(training={"n_epochs": 1, "tensorboard": True}), ("emb",), layout, verbose=0)
    assert not list(layout.models_dir.glob("model_*"))  # no model folder left behind


SCRIPT = r"""
import json, sys
from pathlib import Path
import keras
from tests.test_protocol import vector_experiment, write_vector_dataset
from tests.test_tensorboard import epoch_scalars
from tartarus.train import run

layout = write_vector_dataset(Path(sys.argv[1]) / "data")
result = run(vector_experiment(training={"n_epochs": 2, "early_stopping": False, "tensorboard": True}), ("emb",),
             layout, verbose=0)
print(json.dumps({"backend": keras.backend.backend(), "loss": result.history["loss"],
                  "logged": epoch_scalars(layout.tensorboard_dir(result.model_id))}))
"""


def test_logs_on_jax(tmp_path):
    (report,) = run_on_backend("jax", SCRIPT, tmp_path, timeout=300)
    assert report["backend"] == "jax"
    steps, values = _steps_and_values(report["logged"]["train"])
    assert steps == [0, 1]
    np.testing.assert_allclose(values, report["loss"], rtol=1e-6)
