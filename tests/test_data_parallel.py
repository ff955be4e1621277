"""Data-parallel training (``training.distribution = "data_parallel"``, ``tartarus run --devices N``).

Each backend runs in a fresh process with two virtual CPU devices set up before it initialises
(JAX: ``XLA_FLAGS=--xla_force_host_platform_device_count=2``; TensorFlow: two logical CPU devices).
The tiny experiment (no dropout, fixed seed, global batch 4) is trained on one device
(``distribution = "none"``, patches in memory) and on two (patches in memory, and streamed from the
HDF5 file); the per-epoch loss and val_loss curves must agree to ``RTOL`` = 1e-5 relative.
Measured on this CPU (Keras 3.15.1, JAX 0.10.2, TF 2.21): at most 9.3e-8 on JAX and 3.1e-7 on
TensorFlow (float32 summation order only; 1.6e-6 to 2.1e-6 on benchmarks/bench_data_parallel.py's
larger set), so the bound has a margin of 5x to 30x, while a wrong split (a device seeing other
rows, gradients summed instead of averaged, batches in another order) moves the curves by 1e-2
and more.
"""

import numpy as np
import pytest

from tartarus.config.schema import TrainingSection
from tartarus.distribution import resolve
from tartarus.errors import ConfigError
from tartarus.inputs import VectorDataset
from tartarus.models import load_model
from tests.conftest import run_on_backend

RTOL = 1e-5  # relative: 1 vs 2 devices, per epoch (see the module docstring for the measured difference)

SCRIPT = r"""
import contextlib, io, json, os, sys
from pathlib import Path
if os.environ["KERAS_BACKEND"] == "tensorflow":  # two logical CPU devices, before TF initialises
    import tensorflow as tf
    tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0],
                                               [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
import numpy as np
import tartarus.inputs
from tests.conftest import write_tiny_dataset, TINY_EXPERIMENTS
from tartarus.config import Registry
from tartarus.train import run
from tartarus.predict import predict
from tartarus.fileio import load_npy

root = Path(sys.argv[1])
(root / "exp").mkdir()
(root / "exp" / "tiny.toml").write_text(TINY_EXPERIMENTS)
registry = Registry(root / "exp")
dp2 = ["training.distribution='data_parallel'", "training.devices=2"]
out = {"backend": keras.backend.backend(), "devices": keras.distribution.list_devices()}
lay = write_tiny_dataset(root / "data")
in_memory = tartarus.inputs.IN_MEMORY_LIMIT
for label, sets, limit in (("one", [], in_memory), ("two", dp2, in_memory),
                           ("two_streamed", dp2, 0)):  # limit 0: patches read from the file batch by batch
    tartarus.inputs.IN_MEMORY_LIMIT = limit
    exp = registry.experiment("tiny", ["training.n_epochs=3", "cnn.dropout_factor=0", *sets])
    res = run(exp, (), lay, verbose=0)
    out[label] = {"loss": res.history["loss"], "val_loss": res.history["val_loss"],
                  "model_file": str(lay.model_file(res.model_id))}
    if label != "two_streamed":
        predict(lay, res.model_id, ["test"])  # the saved model, loaded (safe mode) and run as usual
        out[label]["pred"] = load_npy(lay.prediction(res.model_id, "test")).tolist()
# one epoch on one device, resumed on two (a model loaded into the distribution) up to the same three
short = run(registry.experiment("tiny", ["training.n_epochs=1", "cnn.dropout_factor=0"]), (), lay, verbose=0)
res = run(None, (), lay, resume=short.model_id, verbose=0, overrides=["training.n_epochs=3", *dp2])
out["resumed_on_two"] = {"loss": res.history["loss"], "val_loss": res.history["val_loss"]}
# 3 patches an item: 9 val rows, an odd count; two devices leave the last one out of val_loss. A model
# of other weight shapes after the first ones: TF's all-reduce must not mix them up (one strategy per process)
tartarus.inputs.IN_MEMORY_LIMIT = in_memory
odd = write_tiny_dataset(root / "odd", npatches=3)
exp = registry.experiment("tiny", ["training.n_epochs=1", "dataset.npatches=3", "cnn.n_filters_2=5", *dp2])
with contextlib.redirect_stdout(io.StringIO()) as said:
    res = run(exp, (), odd, verbose=1)
out["odd"] = {"loss": res.history["loss"], "val_loss": res.history["val_loss"], "epochs": res.epochs,
              "said": said.getvalue()}
print(json.dumps(out))
"""


@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_two_devices_follow_one(tmp_path, monkeypatch, backend):
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
    report = run_on_backend(backend, SCRIPT, tmp_path, timeout=400)[-1]
    assert report["backend"] == backend and len(report["devices"]) == 2
    one = report["one"]
    assert one["loss"][-1] < one["loss"][0]  # it learns: the curves compared are not flat
    # in-memory patches, patches streamed from the HDF5 file, and a 1-device run resumed on 2 devices
    for label in ("two", "two_streamed", "resumed_on_two"):
        two = report[label]
        assert len(two["loss"]) == len(one["loss"]) == 3
        np.testing.assert_allclose(two["loss"], one["loss"], rtol=RTOL, err_msg=label)
        np.testing.assert_allclose(two["val_loss"], one["val_loss"], rtol=RTOL, err_msg=label)
        if "pred" in two:
            np.testing.assert_allclose(two["pred"], one["pred"], atol=1e-5, err_msg=label)
    # the model trained on two devices loads here (TensorFlow, one device) and predicts as the one-device model
    batch = np.random.default_rng(0).normal(-40, 6, size=(3, 21, 16, 1)).astype(np.float32)
    a = np.asarray(load_model(one["model_file"]).predict_on_batch(batch))
    b = np.asarray(load_model(report["two"]["model_file"]).predict_on_batch(batch))
    np.testing.assert_allclose(b, a, atol=1e-5)
    odd = report["odd"]
    assert odd["epochs"] == 1 and np.isfinite(odd["loss"] + odd["val_loss"]).all()
    assert "data-parallel on 2 device(s)" in odd["said"] and "global batch 4, 2 per device" in odd["said"]
    assert "each epoch leaves out 1 val row(s) to split the last batch evenly over 2 devices" in odd["said"]


TORCH_SCRIPT = r"""
import json
from tartarus.config.schema import TrainingSection
from tartarus.distribution import resolve
from tartarus.errors import ConfigError
try:
    resolve(TrainingSection(distribution="data_parallel"))
    print(json.dumps({"error": None}))
except ConfigError as exc:
    print(json.dumps({"error": str(exc)}))
"""


def test_torch_says_it_cannot(tmp_path):
    error = run_on_backend("torch", TORCH_SCRIPT, timeout=300)[-1]["error"]
    assert error and "torch backend" in error and "KERAS_BACKEND=jax" in error and "\"none\"" in error


def test_split_batches_drops_less_than_the_device_count():
    x = np.arange(11, dtype=np.float32)[:, None]
    data = VectorDataset([x], x, batch_size=4, shuffle=True, seed=3)
    assert len(data) == 3
    data.split_batches(2)
    dropped = []
    for seed in range(6):
        data.start_epoch(seed)
        batches = [data.batch_rows(i) for i in range(len(data))]
        assert [len(b) for b in batches] == [4, 4, 2]  # the last batch 3 -> 2 rows: one per device
        used = np.concatenate(batches)
        assert sorted(used) == sorted(data.order[:10])
        dropped.append(int(data.order[10]))
    assert len(set(dropped)) > 1  # the dropped row changes with the epoch's order
    # two processes of one device each: disjoint halves of every global batch, together the batch
    halves = [VectorDataset([x], x, batch_size=4, shuffle=True, seed=3).split_batches(2, p, 2) for p in (0, 1)]
    for h in halves:
        h.start_epoch(5)
    data.start_epoch(5)
    for i in range(len(data)):
        a, b = halves[0].batch_rows(i), halves[1].batch_rows(i)
        assert len(a) == len(b) == len(data.batch_rows(i)) // 2
        assert sorted(np.concatenate([a, b])) == list(data.batch_rows(i))
    # one device: nothing changes
    single = VectorDataset([x], x, batch_size=4, shuffle=False).split_batches(1)
    assert len(single) == 3 and list(single.batch_rows(2)) == [8, 9, 10]
    with pytest.raises(ValueError, match="do not split"):
        VectorDataset([x], x, batch_size=5).split_batches(2)


def test_configuration_errors(monkeypatch):
    with pytest.raises(ConfigError, match=r"training.devices = 2 is read only with training.distribution"):
        resolve(TrainingSection(devices=2))
    assert not resolve(TrainingSection()).active  # the default: one device, nothing set up
    import keras
    monkeypatch.setattr(keras.distribution, "list_devices", lambda *a: ["cpu:0", "cpu:1"])
    with pytest.raises(ConfigError, match=r"training.devices = 3 \(--devices\), but .* has only 2 device"):
        resolve(TrainingSection(distribution="data_parallel", devices=3))
    with pytest.raises(ConfigError, match=r"n_minibatch = 5 .* over 2 devices: use a multiple of 2, e.g. 4 or 6"):
        resolve(TrainingSection(distribution="data_parallel", n_minibatch=5))
    with pytest.raises(ConfigError, match="is not one of none, data_parallel"):
        from tartarus.config.schema import build_section
        build_section(TrainingSection, {"distribution": "model_parallel"}, "training")


def test_devices_flag(experiments_dir, tiny_layout, capsys):
    from tartarus.cli import main, parse_command_line
    from tests.conftest import cli_error_line
    args = parse_command_line("tartarus run tiny --devices 2")
    assert args.devices == 2
    # --devices implies data_parallel: more devices than this process has is one clear error, before training
    n = len(__import__("keras").distribution.list_devices())
    code = main(["run", "tiny", "--experiments", str(experiments_dir), "--data-dir", str(tiny_layout.root),
                 "--devices", str(n + 1)])
    assert code == 2
    assert f"training.devices = {n + 1} (--devices), but the tensorflow backend has only {n} device" \
        in cli_error_line(capsys)
    assert not tiny_layout.models_dir.exists() or not any(tiny_layout.models_dir.iterdir())
