"""One architecture's smoke check, shared by tests/test_zoo.py in-process and in other backends.

Build from the default config on the example shapes, take a training step, predict, save and
reload in safe mode (same outputs), and extract the last named layer before the head.
"""

from __future__ import annotations

import numpy as np

N_OUT = 5
BATCH = 4


def example_inputs(arch, rng):
    """Random inputs of the example shapes: int word ids for sequences, floats otherwise."""
    from tartarus.models import default_cnn
    cnn = default_cnn(arch.id)
    out = []
    for shape in arch.example_shapes:
        if arch.input_kind == "sequences":
            out.append(rng.integers(2, max(3, cnn.vocab_size or 50), size=(BATCH, *shape)).astype("int32"))
        else:
            out.append(rng.normal(size=(BATCH, *shape)).astype("float32"))
    return out[0] if len(out) == 1 else out


def check_architecture(arch_id, folder):
    """Run the smoke check of ``arch_id`` in ``folder``; return a dict of what was seen."""
    import keras

    from tartarus.models import ARCHITECTURES, build_model, default_cnn, layer_model, load_model
    arch = ARCHITECTURES[arch_id]
    rng = np.random.default_rng(0)
    cnn = default_cnn(arch_id)
    model = build_model(cnn, arch.example_shapes, N_OUT)
    x = example_inputs(arch, rng)
    if cnn.final_activation == "linear":
        y = rng.normal(size=(BATCH, N_OUT)).astype("float32")
        loss = keras.losses.CosineSimilarity()
    else:
        y = np.eye(N_OUT, dtype="float32")[rng.integers(0, N_OUT, BATCH)]
        loss = "categorical_crossentropy"
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss)
    before = [np.array(w) for w in model.get_weights()]
    logs = model.train_on_batch(x, y, return_dict=True)
    changed = any(not np.allclose(a, np.array(b)) for a, b in zip(before, model.get_weights()))
    out = np.asarray(model.predict_on_batch(x))
    path = f"{folder}/arch_{arch_id}.keras"
    model.save(path)
    again = np.asarray(load_model(path).predict_on_batch(x))
    names = [layer.name for layer in model.layers]  # logits has no seed index in some architectures
    head = names.index("logits") if "logits" in names else len(names) - 1
    hidden = names[head - 1]
    embedding = np.asarray(layer_model(model, hidden).predict_on_batch(x))
    return {"id": arch_id, "backend": keras.backend.backend(), "loss_finite": bool(np.isfinite(logs["loss"])),
            "weights_changed": changed, "out_shape": list(out.shape), "finite": bool(np.isfinite(out).all()),
            "reload_max_diff": float(np.abs(out - again).max()), "layer": hidden,
            "layer_rows": int(embedding.shape[0]), "layer_finite": bool(np.isfinite(embedding).all())}


def expected(arch_id, backend):
    return {"id": arch_id, "backend": backend, "loss_finite": True, "weights_changed": True,
            "out_shape": [BATCH, N_OUT], "finite": True, "layer_rows": BATCH, "layer_finite": True}
