import keras
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
    assert keras.backend.backend() in ("tensorflow", "jax", "torch")
