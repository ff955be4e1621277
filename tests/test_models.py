import numpy as np
import pytest

from tartarus.config import Registry
from tartarus.errors import ConfigError
from tartarus.models import build_model, describe_layers, layer_model, load_model, resolve_layer


def cnn(**overrides):
    sets = [f"cnn.{k}={v!r}" for k, v in overrides.items()]
    return Registry().experiment("dummy_audio", sets).cnn


def test_dummy_audio_layer_numbering_matches_the_seed():
    model = build_model(cnn(), (322, 96, 1), 3)
    names = describe_layers(model).split(", ")
    assert names == ["0:conv_1", "1:act_1", "2:pool_1", "3:dropout_1", "4:conv_2", "5:act_2", "6:pool_2",
                     "7:dropout_2", "8:flat", "9:logits", "10:output"]
    assert model.get_layer("flat").output.shape[-1] == 38 * 128  # (322-3)//4 -> 79, -3 -> 76, //2 -> 38
    assert resolve_layer(model, -1).name == "output"


def test_optional_blocks_and_dense_layer():
    model = build_model(cnn(n_filters_3=16, n_kernel_3=(3, 1), n_pool_3=(2, 1), n_dense=32), (322, 96, 1), 5)
    names = [layer.name for layer in model.layers]
    assert "conv_3" in names and "dense_1" in names and "conv_4" not in names
    assert model.output.shape == (None, 5)


def test_linear_head_is_l2_normalised_and_loads_in_safe_mode(tmp_path):
    model = build_model(cnn(final_activation="linear"), (40, 24, 1), 8, input_stats=(-30.0, 10.0))
    x = np.random.default_rng(0).normal(-30, 10, size=(4, 40, 24, 1)).astype(np.float32)
    out = np.asarray(model.predict_on_batch(x))
    assert np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)
    path = tmp_path / "m.keras"
    model.save(path)
    again = load_model(path)  # safe_mode=True: no Lambda layers, only registered ones
    assert np.allclose(np.asarray(again.predict_on_batch(x)), out, atol=1e-6)
    emb = np.asarray(layer_model(again, "flat").predict_on_batch(x))
    assert emb.shape[0] == 4 and emb.ndim == 2


def test_standardize_uses_training_statistics():
    model = build_model(cnn(), (40, 24, 1), 3, input_stats=(-50.0, 5.0))
    layer = model.get_layer("standardize")
    assert np.allclose(np.asarray(layer(np.full((1, 40, 24, 1), -45.0, np.float32))), 1.0)


def test_unknown_architecture():
    with pytest.raises(ConfigError, match="cnn.architecture: unknown id '99'"):
        build_model(cnn(architecture="99"), (40, 24, 1), 3)


def test_kernel_larger_than_input_is_clipped():
    # the seed's (4, 96) first kernel spans all bins; with 24 bins it spans those 24
    model = build_model(cnn(), (40, 24, 1), 3)
    assert model.get_layer("conv_1").kernel.shape[:2] == (4, 24)


def test_dummy_audio_shapes_and_parameter_count_by_hand():
    # dummy_audio on 40 x 24 patches: conv_1 64 x (4 x 24) -> (37, 1, 64), pool (4, 1) -> (9, 1, 64);
    # conv_2 128 x (4 x 1) -> (6, 1, 128), pool (2, 1) -> (3, 1, 128); flat 384; logits 3
    model = build_model(cnn(), (40, 24, 1), 3)
    shapes = {name: tuple(model.get_layer(name).output.shape[1:]) for name in ("conv_1", "pool_1", "conv_2", "pool_2",
                                                                             "flat", "output")}
    assert shapes == {"conv_1": (37, 1, 64), "pool_1": (9, 1, 64), "conv_2": (6, 1, 128), "pool_2": (3, 1, 128),
                      "flat": (384,), "output": (3,)}
    conv_1 = 4 * 24 * 1 * 64 + 64
    conv_2 = 4 * 1 * 64 * 128 + 128
    logits = 384 * 3 + 3
    assert model.count_params() == conv_1 + conv_2 + logits == 40259  # Standardize: scalars, no weights


def test_dense_forward_pass_equals_numpy():
    # architecture 3 without dropout: softmax(relu(x W1 + b1) W2 + b2), weights set by hand
    from tartarus.models import default_cnn
    model = build_model(default_cnn("3", n_dense=4, n_dense_2=0, dropout_factor=0.0, final_activation="softmax"),
                        [(5,)], 3)
    assert model.count_params() == (5 * 4 + 4) + (4 * 3 + 3)
    rng = np.random.default_rng(1)
    w1, b1 = rng.normal(size=(5, 4)).astype(np.float32), rng.normal(size=4).astype(np.float32)
    w2, b2 = rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=3).astype(np.float32)
    model.get_layer("dense_1").set_weights([w1, b1])
    model.get_layer("logits").set_weights([w2, b2])
    x = rng.normal(size=(6, 5)).astype(np.float32)
    z = np.maximum(x @ w1 + b1, 0) @ w2 + b2
    expected = np.exp(z - z.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    assert np.allclose(np.asarray(model.predict_on_batch(x)), expected, atol=1e-5)
