"""Training throughput of every audio architecture on this CPU, with its FLOPs per sample.

    python benchmarks/bench_architectures.py [--batch 16] [--frames 322] [--bins 96] [--steps 10] [--ids 1 5 62]

Each architecture is built from its default config (``default_cnn``) for patches of
``frames x bins`` (the seed's 15 s CQT / mel patches by default) and 10 outputs, then trained with
``train_on_batch`` on random data: two warm-up steps (graph building), then ``--steps`` timed
steps. Printed per architecture: parameters, forward GFLOPs per sample (conv, dense and recurrent
layers, see ``tartarus.models.catalog.forward_flops``), training samples per second, and the ratio
to architecture 1 (the seed's audio CNN, the reference) measured in the same run. Architectures
with a vector input beside the patches (id 2) get a random 64-d vector.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def measure(arch, batch, frames, bins, steps):
    import keras

    from tartarus.models import build_model, default_cnn
    from tartarus.models.catalog import forward_flops

    shapes = [(frames, bins, 1)] + [tuple(s) for s in arch.example_shapes[1:]]
    model = build_model(default_cnn(arch.id), shapes, 10)
    rng = np.random.default_rng(0)
    x = [rng.normal(size=(batch, *s)).astype("float32") for s in shapes]
    x = x[0] if len(x) == 1 else x
    y = np.eye(10, dtype="float32")[rng.integers(0, 10, batch)]
    linear = default_cnn(arch.id).final_activation == "linear"
    model.compile(optimizer="adam", loss=keras.losses.CosineSimilarity() if linear else "categorical_crossentropy")
    for _ in range(2):
        model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    seconds = time.perf_counter() - start
    return model.count_params(), forward_flops(model), batch * steps / seconds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--frames", type=int, default=322)
    ap.add_argument("--bins", type=int, default=96)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--ids", nargs="*")
    args = ap.parse_args()

    import keras

    from tartarus.models import ARCHITECTURES
    ids = args.ids or [k for k, a in ARCHITECTURES.items() if a.input_kind.startswith("patches")]
    ids = sorted(set(ids) | {"1"}, key=lambda i: (len(i), i))
    print(f"backend {keras.backend.backend()}, batch {args.batch}, patches {args.frames}x{args.bins}, "
          f"{args.steps} timed steps, {os.cpu_count()} CPUs")
    print(f"{'id':>4}  {'name':<48} {'params':>11} {'GFLOP/sample':>13} {'samples/s':>10} {'vs arch 1':>9}")
    results = {i: measure(ARCHITECTURES[i], args.batch, args.frames, args.bins, args.steps) for i in ids}
    ref = results["1"][2]
    for i in ids:
        params, flops, rate = results[i]
        print(f"{i:>4}  {ARCHITECTURES[i].name:<48} {params:>11,} {flops / 1e9:>13.3f} {rate:>10.1f} "
              f"{rate / ref:>8.2f}x")


if __name__ == "__main__":
    main()
