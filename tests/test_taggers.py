"""Architectures 61 (musicnn) and 62 (short-chunk ResNet): layer tables, parameter counts, a training
step, prediction, safe-mode reload and named layers on the example and dummy-data patch shapes; and
the short-chunk ResNet against architecture 1 on the dummy data (dummy_shortres vs dummy_audio)."""

import numpy as np
import pytest

from tartarus.audio.patches import create_patches
from tartarus.audio.runner import compute_spectrograms
from tartarus.config import Registry
from tartarus.datasets.dummy import generate_dummy
from tartarus.errors import ConfigError
from tartarus.layout import DataLayout
from tartarus.models import (ARCHITECTURES, build_model, default_cnn, describe_layers, get_architecture,
                             layer_model, load_model, resolve_layer)
from tartarus.pipeline import run_experiment as run  # train -> predict -> evaluate

N_OUT = 5
BATCH = 4
DUMMY_SHAPE = (322, 96, 1)  # the dummy data's 15 s patches

MUSICNN_LAYERS = (
    ["timbral_pad", "timbral_1", "timbral_2", "temporal_1", "temporal_2", "temporal_3"]
    + [f"{branch}_{suffix}" for suffix in ("bn", "act", "pool", "frames")
       for branch in ("timbral_1", "timbral_2", "temporal_1", "temporal_2", "temporal_3")]
    + ["front_end", "mid_1", "mid_1_bn", "mid_1_act", "mid_2", "mid_2_bn", "mid_2_act", "mid_2_res",
       "mid_3", "mid_3_bn", "mid_3_act", "mid_3_res", "mid_end", "global_mean", "global_max", "pooled",
       "pooled_bn", "pooled_dropout", "dense_1", "bn_dense_1", "act_dense_1", "dropout_dense_1", "logits",
       "output"])


def resnet_layers(projected=(1, 3, 7)):
    names = []
    for i in range(1, 8):
        proj = [f"res_{i}_proj"] if i in projected else []
        proj_bn = [f"res_{i}_proj_bn"] if i in projected else []
        names += ([f"res_{i}_conv_a", f"res_{i}_bn_a", f"res_{i}_act_a", f"res_{i}_conv_b"] + proj
                  + [f"res_{i}_bn_b"] + proj_bn + [f"res_{i}_add", f"res_{i}_act", f"pool_{i}"])
    return names + ["pooled", "dense_1", "bn_dense_1", "act_dense_1", "dropout_dense_1", "logits", "output"]


LAYERS = {"61": MUSICNN_LAYERS, "62": resnet_layers()}
CASES = [pytest.param(arch_id, shape, id=f"{arch_id}-{'x'.join(map(str, shape))}") for arch_id in ("61", "62")
         for shape in (*ARCHITECTURES[arch_id].example_shapes, DUMMY_SHAPE)]


def bn(units):
    return 4 * units  # gamma, beta, moving mean and variance


def musicnn_params(bins, c):
    """Parameters of architecture 61 (convolutions without bias, each followed by batch norm)."""
    timbral = sum(c.n_kernel_1[0] * round(span * bins) * c.n_filters_1 + bn(c.n_filters_1) for span in (0.4, 0.7))
    lengths = (c.n_kernel_2[0], c.n_kernel_2[0] // 2, c.n_kernel_2[0] // 4)
    temporal = sum(n * c.n_filters_2 + bn(c.n_filters_2) for n in lengths)
    front = 2 * c.n_filters_1 + 3 * c.n_filters_2
    mid = sum(c.n_kernel_3[0] * cin * c.n_filters_3 + bn(c.n_filters_3)
              for cin in (front, c.n_filters_3, c.n_filters_3))
    pooled = 2 * (front + 3 * c.n_filters_3)
    back = bn(pooled) + pooled * c.n_dense + bn(c.n_dense) + c.n_dense * N_OUT + N_OUT
    return timbral + temporal + mid + back


def resnet_params(c):
    """Parameters of architecture 62: widths c x (1, 1, 2, 2, 2, 2, 4), 1x1 projections on width changes."""
    total, cin = 0, 1
    for width in (c.n_filters_1 * m for m in (1, 1, 2, 2, 2, 2, 4)):
        total += 9 * cin * width + bn(width) + 9 * width * width + bn(width)
        total += cin * width + bn(width) if cin != width else 0
        cin = width
    return total + cin * c.n_dense + bn(c.n_dense) + c.n_dense * N_OUT + N_OUT


def test_table_entries_and_experiments():
    for arch_id, name in (("61", "musicnn"), ("62", "short-chunk ResNet")):
        arch = get_architecture(arch_id)
        assert arch.input_kind == "patches" and name in arch.name and arch.example_shapes
        assert default_cnn(arch_id).final_activation == "sigmoid"  # taggers: multi-label by default
    reg = Registry()
    for exp_name, arch_id in (("dummy_musicnn", "61"), ("dummy_shortres", "62")):
        e = reg.experiment(exp_name)
        assert (e.cnn.architecture, e.dataset.dataset, e.cnn.final_activation) == (arch_id, "DUMMY", "softmax")
    assert reg.experiment("dummy_musicnn").cnn.n_kernel_1 == (7, 1)  # not architecture 1's (4, 96)


def eager():
    """Run one-off steps eagerly, except on JAX: tracing a TensorFlow function for a single step costs
    more than the step, while JAX dispatches op by op much more slowly than it compiles."""
    import keras
    return keras.backend.backend() != "jax"


def infer(model, x):
    """The model's output in inference mode."""
    import keras
    if not eager():
        return np.asarray(model.predict_on_batch(x))
    return keras.ops.convert_to_numpy(model(x, training=False))


@pytest.mark.parametrize("arch_id, shape", CASES)
def test_trains_predicts_reloads_and_extracts(arch_id, shape, tmp_path):
    import keras
    cnn = default_cnn(arch_id)
    model = build_model(cnn, shape, N_OUT, input_stats=(-40.0, 10.0))
    assert model.name == f"tartarus_arch_{arch_id}"
    assert describe_layers(model).split(", ") == [f"{i}:{n}" for i, n in enumerate(LAYERS[arch_id])]
    expected = musicnn_params(shape[1], cnn) if arch_id == "61" else resnet_params(cnn)
    assert model.count_params() == expected
    assert model.get_layer("standardize").mean == -40.0 and model.get_layer("standardize").std == 10.0
    rng = np.random.default_rng(0)
    x = rng.normal(-40, 10, size=(BATCH, *shape)).astype(np.float32)
    y = (rng.random((BATCH, N_OUT)) < 0.4).astype(np.float32)  # multi-hot tags
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy", run_eagerly=eager())
    before = np.asarray(model.predict_on_batch(x))
    loss = model.train_on_batch(x, y, return_dict=True)["loss"]
    assert np.isfinite(float(loss))
    out = np.asarray(model.predict_on_batch(x))
    assert out.shape == (BATCH, N_OUT) and np.isfinite(out).all() and ((out > 0) & (out < 1)).all()
    assert not np.allclose(out, before)
    path = tmp_path / f"arch_{arch_id}.keras"
    model.save(path)
    again = load_model(path)
    assert np.abs(infer(again, x) - out).max() <= 1e-6
    emb = infer(layer_model(again, "act_dense_1"), x)
    assert emb.shape == (BATCH, cnn.n_dense) and (emb >= 0).all()
    assert resolve_layer(again, LAYERS[arch_id].index("pooled")).name == "pooled"
    pooled = infer(layer_model(again, "pooled"), x)
    if arch_id == "61":  # mean then max over time of the densely connected mid end
        mid = infer(layer_model(again, "mid_end"), x)
        assert mid.shape == (BATCH, shape[0], 2 * cnn.n_filters_1 + 3 * cnn.n_filters_2 + 3 * cnn.n_filters_3)
        assert np.allclose(pooled, np.concatenate([mid.mean(axis=1), mid.max(axis=1)], axis=1), atol=1e-5)
    else:  # global max over what the seven 2x2 pools leave of time and frequency
        last = infer(layer_model(again, "pool_7"), x)
        assert last.shape[1:] == (max(1, shape[0] // 128), max(1, shape[1] // 128), 4 * cnn.n_filters_1)
        assert np.allclose(pooled, last.max(axis=(1, 2)), atol=1e-6)


@pytest.mark.parametrize("arch_id", ["61", "62"])
def test_builds_for_magnatagatune_and_tiny_patches(arch_id):
    for shape in ((599, 128, 1), (24, 16, 1), (8, 5, 1)):  # pools and filter lengths clip
        model = build_model(default_cnn(arch_id), shape, N_OUT)
        assert model.output.shape == (None, N_OUT)
        assert describe_layers(model).split(", ")[-1] == f"{len(LAYERS[arch_id]) - 1}:output"
    with pytest.raises(ConfigError, match="takes \\(frames, bins, 1\\) patches"):
        build_model(default_cnn(arch_id), (64, 16, 2), N_OUT)


def test_musicnn_parts_can_be_left_out_and_resnet_width_sets_sizes():
    timbral_only = build_model(default_cnn("61", n_filters_2=0, n_filters_3=0), (64, 40, 1), 3)
    names = [layer.name for layer in timbral_only.layers]
    assert "timbral_1" in names and "temporal_1" not in names and "mid_1" not in names
    with pytest.raises(ConfigError, match="no front end"):
        build_model(default_cnn("61", n_filters_1=0, n_filters_2=0), (64, 40, 1), 3)
    wide = build_model(default_cnn("62", n_filters_1=32, n_dense=128, final_activation="linear"), (64, 40, 1), 3)
    assert wide.get_layer("pooled").output.shape == (None, 128) and wide.get_layer("dense_1").units == 128
    assert wide.layers[-1].name == "l2_normalize"
    # n_dense = 0 means no dense back end, as in every architecture (it meant 4 x n_filters_1 before)
    bare = build_model(default_cnn("62", n_filters_1=32, n_dense=0), (64, 40, 1), 3)
    assert "dense_1" not in [layer.name for layer in bare.layers]
    assert bare.get_layer("logits").input.shape == (None, 128)


def test_short_chunk_resnet_matches_architecture_1_on_dummy_data(tmp_path):
    """The issue's requirement: dummy_shortres is at least as accurate as dummy_audio (test split)."""
    layout = DataLayout(tmp_path / "data")
    generate_dummy(layout.root, seed=0)
    reg = Registry()
    entry = reg.dataset("DUMMY")
    compute_spectrograms(layout, entry, progress=False)
    create_patches(layout, entry)
    accuracy = {name: run(reg.experiment(name), (), layout, verbose=0).results["test"]["accuracy"]
                for name in ("dummy_audio", "dummy_shortres")}
    assert accuracy["dummy_shortres"] >= accuracy["dummy_audio"] >= 0.75, accuracy
