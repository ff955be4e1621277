"""Data-parallel training on 1 and 2 virtual CPU devices, JAX and TensorFlow: samples/s and loss agreement.

    python benchmarks/bench_data_parallel.py [--items-per-class 40] [--frames 96] [--bins 48] [--epochs 4] [--batch 16]

For each backend, one fresh process (the virtual devices must exist before the backend starts:
``XLA_FLAGS=--xla_force_host_platform_device_count=2`` for JAX, two logical CPU devices for
TensorFlow) trains the tests' tiny architecture-1 experiment (no dropout, seed 1234) through
``tartarus.train.run`` on a synthetic patches set three ways: ``distribution = "none"``,
``data_parallel`` on 1 device and on 2. It prints samples/s (train rows / the median time of one
epoch's ``fit``, the first epoch, which compiles, left out) and the largest relative difference of
the per-epoch loss and val_loss against the 1-device run.

For JAX it also runs two processes of one CPU device each, joined through localhost as two hosts
would be (``KERAS_DISTRIBUTION_*`` variables, ``jax.distributed.initialize``), each reading its half of
every batch; the row shows process 0's figures.

On a CPU the two "devices" share the same cores, so this is a correctness check more than a speed
one: 2 virtual devices do the same arithmetic plus the gradient exchange.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import socket
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, os, sys, time
from pathlib import Path
if os.environ["KERAS_BACKEND"] == "tensorflow":
    import tensorflow as tf
    tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0],
                                               [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
import numpy as np
from tests.conftest import write_tiny_dataset, TINY_EXPERIMENTS
from tartarus.config import Registry
from tartarus.train import run

root, per_class, frames, bins, epochs, batch = Path(sys.argv[1]), *map(int, sys.argv[2:7])
hosts = os.environ.get("KERAS_DISTRIBUTION_NUM_PROCESSES")  # one of several JAX processes: data_parallel only
lay = write_tiny_dataset(root / "data", n_per_class=per_class, frames=frames, bins=bins)
(root / "exp").mkdir()
(root / "exp" / "tiny.toml").write_text(TINY_EXPERIMENTS)
times = []
fit = keras.Model.fit
def timed_fit(self, *a, **k):  # train.run calls fit once per epoch
    start = time.perf_counter()
    out = fit(self, *a, **k)
    times.append(time.perf_counter() - start)
    return out
keras.Model.fit = timed_fit
kernel = f"[3, {bins}]"
rows = 3 * (per_class - 2) * 2  # write_tiny_dataset: 2 patches an item, per_class - 2 train items a class
report = {}
configs = (("none", []), ("1 device", ["training.distribution='data_parallel'", "training.devices=1"]),
           ("2 devices", ["training.distribution='data_parallel'", "training.devices=2"]))
if hosts:
    configs = ((f"{hosts} processes", ["training.distribution='data_parallel'"]),)
for label, sets in configs:
    exp = Registry(root / "exp").experiment("tiny", [f"training.n_epochs={epochs}", f"training.n_minibatch={batch}",
                                                     "cnn.dropout_factor=0", f"cnn.n_kernel_1={kernel}", *sets])
    times.clear()
    res = run(exp, (), lay, verbose=0)
    report[label] = {"samples_per_s": rows / float(np.median(times[1:])), "loss": res.history["loss"],
                     "val_loss": res.history["val_loss"]}
print(json.dumps(report))
"""


def run_backend(backend, args, n_processes=1):
    """The CHILD's report: one process with 2 virtual devices, or (JAX, ``n_processes`` > 1) process 0's
    of ``n_processes`` processes of one CPU device each, joined as hosts through localhost."""
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "PYTHONPATH": str(REPO / "src") + os.pathsep + str(REPO)}
    if n_processes > 1:
        with socket.socket() as s:
            s.bind(("localhost", 0))
            port = s.getsockname()[1]
        env = {k: v for k, v in env.items() if k != "XLA_FLAGS"}
        env.update(KERAS_DISTRIBUTION_JOB_ADDRESSES=f"localhost:{port}", KERAS_DISTRIBUTION_NUM_PROCESSES=str(n_processes))
    with tempfile.TemporaryDirectory() as tmp:
        argv = [str(args.items_per_class), str(args.frames), str(args.bins), str(args.epochs), str(args.batch)]
        procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(Path(tmp) / str(i)), *argv], text=True, cwd=REPO,
                                  env={**env, "KERAS_DISTRIBUTION_PROCESS_ID": str(i)},
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(n_processes)]
        outs = [p.communicate() for p in procs]
    for p, (out, err) in zip(procs, outs):
        if p.returncode:
            raise SystemExit(f"{backend}: failed\n{err[-3000:]}")
    return json.loads([line for line in outs[0][0].splitlines() if line.startswith("{")][-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items-per-class", type=int, default=40)
    parser.add_argument("--frames", type=int, default=96)
    parser.add_argument("--bins", type=int, default=48)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    rows = 3 * (args.items_per_class - 2) * 2
    print(f"{rows} train patches of {args.frames}x{args.bins}, global batch {args.batch}, {args.epochs} epochs")
    print(f"{'backend':<11} {'devices':<10} {'samples/s':>10} {'max rel. diff loss':>19} {'val_loss':>10}")
    for backend in ("jax", "tensorflow"):
        report = run_backend(backend, args)
        if backend == "jax":  # multi-host as on two machines: two processes of one CPU device each
            report.update(run_backend(backend, args, n_processes=2))
        ref = report["none"]
        for label, r in report.items():
            diff = max(abs(a - b) / abs(b) for a, b in zip(r["loss"], ref["loss"]))
            val = max(abs(a - b) / abs(b) for a, b in zip(r["val_loss"], ref["val_loss"]))
            print(f"{backend:<11} {label:<10} {r['samples_per_s']:>10.0f} {diff:>19.1e} {val:>10.1e}")


if __name__ == "__main__":
    main()
