"""Training throughput from the HDF5 patch stream against the same model fed from arrays in memory.

    python benchmarks/bench_training_feed.py [--items 512] [--epochs 3] [--batch 32] [--rounds 3]

Writes a synthetic patches file (322 frames x 96 bins, as the dummy_audio patches), then trains
architecture 1 (dummy_audio's settings) for the same number of epochs three ways, in one process:
  memory    : keras fit on numpy arrays (the reference)
  hdf5-auto : what training does by default: the HDF5 set loaded whole when it fits in memory,
              handed to Keras as arrays (tartarus.train.fit_arguments)
  hdf5-stream : our PatchDataset forced to stream, shuffled reads from the file every batch
  epoch-loop  : hdf5-auto trained as tartarus.train does it: one fit per epoch, each seeded from
              (random_seed, epoch) so that a resumed run repeats the uninterrupted one
and prints samples per second (best of rotating rounds) and the ratios to the reference
(target: at least 0.9).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import h5py  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

from tartarus.config import Registry  # noqa: E402
from tartarus.inputs import PatchDataset  # noqa: E402
from tartarus.models import build_model  # noqa: E402
from tartarus.train import _OneEpoch, compile_model, epoch_seed, fit_arguments, seed_epoch  # noqa: E402


def make_file(path, n_items, frames=322, bins=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(-40, 10, size=(n_items, frames, bins, 1)).astype(np.float32)
    labels = rng.integers(0, 3, n_items)
    x[np.arange(n_items), :, labels * 30, 0] += 20
    ids = [f"i{i:05d}" for i in range(n_items)]
    with h5py.File(path, "w") as f:
        f.create_dataset("features", data=x, chunks=(1, frames, bins, 1))
        f.create_dataset("index", data=np.array(ids, dtype=object), dtype=h5py.string_dtype())
    return x, np.eye(3, dtype=np.float32)[labels], ids


def timed_fit(exp, data, epochs, **fit_kw):
    """Seconds for ``epochs`` epochs after one warm-up epoch; ``data`` positional, or all in fit_kw."""
    keras.utils.set_random_seed(0)
    model = build_model(exp.cnn, (322, 96, 1), 3)
    compile_model(model, exp)
    model.fit(*data, epochs=1, verbose=0, **fit_kw)  # warm-up: tracing and allocation
    start = time.perf_counter()
    model.fit(*data, epochs=epochs, verbose=0, **fit_kw)
    return time.perf_counter() - start


def timed_epoch_loop(exp, dataset, epochs):
    """``timed_fit`` with train.run's epoch loop: a seeded fit per epoch on this epoch's row order."""
    keras.utils.set_random_seed(0)
    model = build_model(exp.cnn, (322, 96, 1), 3)
    compile_model(model, exp)
    feed = fit_arguments(dataset)

    def one_epoch(epoch, total):
        seed_epoch(model, dataset, 0, epoch)
        rows = dataset.order
        model.fit(x=feed["x"][rows], y=feed["y"][rows], batch_size=feed["batch_size"], shuffle=False,
                  epochs=total, initial_epoch=epoch, callbacks=[_OneEpoch(epoch_seed(0, epoch))], verbose=0)

    one_epoch(0, 1)  # warm-up, as in timed_fit
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        one_epoch(epoch, epochs + 1)
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=512)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    exp = Registry(Path(__file__).resolve().parents[1] / "experiments").experiment(
        "dummy_audio", [f"training.n_minibatch={args.batch}"])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "patches.hdf5"
        x, y, ids = make_file(path, args.items)
        n = args.items * args.epochs
        feeds = {
            "memory": lambda: timed_fit(exp, (x, y), args.epochs, batch_size=args.batch, shuffle=True),
            "hdf5-auto": lambda: timed_fit(exp, (), args.epochs,
                                           **fit_arguments(PatchDataset(path, y, ids, args.batch, seed=0))),
            "hdf5-stream": lambda: timed_fit(exp, (PatchDataset(path, y, ids, args.batch, seed=0, in_memory=False),),
                                             args.epochs),
            "epoch-loop": lambda: timed_epoch_loop(exp, PatchDataset(path, y, ids, args.batch, seed=0), args.epochs),
        }
        # rounds in rotating order, best time of each feed: the machine is shared and noisy
        best = {name: float("inf") for name in feeds}
        names = list(feeds)
        for r in range(args.rounds):
            for name in names[r % len(names):] + names[:r % len(names)]:
                best[name] = min(best[name], feeds[name]())
    print(f"backend {keras.backend.backend()}, {args.items} patches of 322x96, batch {args.batch}, "
          f"{args.epochs} epochs, best of {args.rounds} rounds")
    print(f"{'feed':<12} {'samples/s':>10} {'ratio':>7}")
    for name, t in best.items():
        print(f"{name:<12} {n / t:>10.1f} {best['memory'] / t:>7.2f}")

if __name__ == "__main__":
    main()
