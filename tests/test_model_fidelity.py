"""The model builders against the seed's models.py (sergiooramas/tartarus b214f66, src/models.py):
input shape checks, one meaning of ``n_dense = 0``, architecture 6's structure, the seed's ``-l``
indices and the seed's ``init="uniform"`` weight initialisation (``cnn.init``)."""

import keras
import numpy as np
import pytest

from tartarus.cli import main
from tartarus.config import Registry
from tartarus.errors import ConfigError, DataMismatch
from tartarus.models import (ARCHITECTURES, build_model, check_input_shapes, default_cnn, layer_model,
                             resolve_layer)

N_OUT = 3
RNG = np.random.default_rng(0)

# small audio configs (seconds to build): every audio architecture, the keys it reads made small
SMALL_AUDIO = {
    "1": dict(n_filters_1=4, n_filters_2=4),
    "2": dict(n_filters_1=4, n_filters_2=4, n_filters_3=0, n_filters_4=0, n_dense=4),
    "5": dict(n_filters_1=4, n_filters_2=4, n_filters_3=0, n_filters_4=0),
    "11": dict(n_filters_1=4, n_filters_2=4, n_filters_3=0, n_filters_4=0),
    "12": dict(n_filters_2=4, n_filters_3=4, n_filters_4=0),
    "51": dict(n_filters_1=4, n_filters_2=4, n_filters_3=0, n_filters_4=0, n_dense=8, n_dense_2=8),
    "61": dict(n_filters_1=2, n_filters_2=2, n_filters_3=4, n_dense=8),
    "62": dict(n_filters_1=2, n_dense=8),
}
PATCH = (40, 16, 1)


def audio_shapes(arch_id, patch):
    return [patch, (5,)] if arch_id == "2" else [patch]


def dense_layers(model):
    return [layer.name for layer in model.layers if isinstance(layer, keras.layers.Dense)]


# ------------------------------------------------------------------------------ input checks
@pytest.mark.parametrize("arch_id", sorted(SMALL_AUDIO, key=int))
def test_audio_architectures_refuse_channels_first_and_missing_channel(arch_id):
    cnn = default_cnn(arch_id, **SMALL_AUDIO[arch_id])
    assert build_model(cnn, audio_shapes(arch_id, PATCH), N_OUT).output.shape == (None, N_OUT)
    with pytest.raises(ConfigError) as err:
        build_model(cnn, audio_shapes(arch_id, (1, 40, 16)), N_OUT)  # the seed's (1, frames, bins)
    message = str(err.value)
    assert f"cnn.architecture {arch_id} takes (frames, bins, 1) patches (channels last)" in message
    assert "got shape (1, 40, 16)" in message and "channels first (1, frames, bins)" in message
    with pytest.raises(ConfigError, match=r"got shape \(40, 16\): \(frames, bins\) without the channel axis"):
        build_model(cnn, audio_shapes(arch_id, (40, 16)), N_OUT)
    with pytest.raises(ConfigError, match=r"got shape \(40, 16, 2\): rank 3 with 2 channels"):
        build_model(cnn, audio_shapes(arch_id, (40, 16, 2)), N_OUT)


def test_data_shapes_are_checked_against_a_built_model():
    model = build_model(default_cnn("1", **SMALL_AUDIO["1"]), [PATCH], N_OUT)
    check_input_shapes(model, [PATCH])  # fits: nothing raised
    with pytest.raises(DataMismatch, match=r"input 1 expects shape \(40, 16, 1\) \(no batch axis\), "
                                           r"X\.h5 give \(1, 40, 16\): channels first"):
        check_input_shapes(model, [(1, 40, 16)], source="X.h5")
    with pytest.raises(DataMismatch, match=r"expects shape \(40, 16, 1\).*give \(50, 16, 1\)"):
        check_input_shapes(model, [(50, 16, 1)])
    with pytest.raises(DataMismatch, match="takes 1 input"):
        check_input_shapes(model, [PATCH, (5,)])


# ---------------------------------------------------------------- n_dense = 0: no hidden layer
@pytest.mark.parametrize("arch_id", ["1", "2", "3", "4", "6", "12", "31", "32", "33", "34", "51", "61", "62"])
def test_n_dense_zero_means_no_hidden_layer_in_every_builder(arch_id):
    arch = ARCHITECTURES[arch_id]
    overrides = {**SMALL_AUDIO.get(arch_id, {}), "n_dense": 0, "n_dense_2": 0}
    extra = {}
    if arch.input_kind == "sequences":
        overrides.update(vocab_size=20, embedding_dim=4, num_filters=3)
    shapes = audio_shapes(arch_id, PATCH) if arch_id in SMALL_AUDIO else arch.example_shapes
    model = build_model(default_cnn(arch_id, **overrides), shapes, N_OUT, **extra)
    assert dense_layers(model) == ["logits"]  # only the output layer


def test_shufl_and_tagger_sizes_are_stated_by_their_defaults_and_experiments():
    # 0 used to mean 2048 (shufl) and 200 / 4 x n_filters_1 (taggers): now each states its size
    assert (ARCHITECTURES["51"].defaults["n_dense"], ARCHITECTURES["51"].defaults["n_dense_2"]) == (2048, 2048)
    assert ARCHITECTURES["61"].defaults["n_dense"] == 64 and ARCHITECTURES["62"].defaults["n_dense"] == 64
    reg = Registry()
    for name, sizes in {"shufl": (2048, 2048), "dummy_musicnn": (64, None), "dummy_shortres": (64, None)}.items():
        cnn = reg.experiment(name).cnn
        assert cnn.n_dense == sizes[0] and (sizes[1] is None or cnn.n_dense_2 == sizes[1]), name
    model = build_model(default_cnn("51", **SMALL_AUDIO["51"]), [PATCH], N_OUT)
    assert dense_layers(model) == ["dense_1", "dense_2", "logits"]
    assert model.get_layer("dense_2").units == 8


def test_hidden_layers_of_the_sequential_seed_models_count_like_the_seed():
    # the seed's get_model_1: Dense, Activation("relu"), Dropout per hidden layer
    model = build_model(default_cnn("1", n_filters_1=4, n_filters_2=4, n_dense=6, n_dense_2=6), [PATCH], N_OUT)
    names = [layer.name for layer in model.layers]
    flat = names.index("flat")
    assert names[flat:] == ["flat", "fc_1", "dense_1", "dropout_dense_1", "fc_2", "dense_2", "dropout_dense_2",
                            "logits", "output"]


# ------------------------------------------------------------------------- architecture 6
def test_architecture_6_is_the_seeds_three_activation_branches():
    """get_model_6: Dense(n_dense) relu, tanh, sigmoid over the raw input, merged, Dropout,
    Dense(n_dense_2, relu), Dropout, Dense(n_out, final_activation); no input dropout."""
    cnn = default_cnn("6", n_dense=8, n_dense_2=4, dropout_factor=0.5, final_activation="sigmoid")
    model = build_model(cnn, [(10,)], N_OUT)
    branches = [model.get_layer(f"branch_{a}") for a in ("relu", "tanh", "sigmoid")]
    for layer, act in zip(branches, ("relu", "tanh", "sigmoid")):
        assert layer.units == 8 and layer.activation.__name__ == act
        assert layer.input is model.inputs[0]  # straight from the input: no dropout before
    assert not [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)
                and layer.input is model.inputs[0]]
    assert model.get_layer("dropout_branches").rate == 0.5 and model.get_layer("dropout_2").rate == 0.5
    assert model.get_layer("dense_2").units == 4 and model.get_layer("dense_2").activation.__name__ == "relu"
    assert model.get_layer("output").activation.__name__ == "sigmoid"
    assert model.count_params() == 3 * (10 * 8 + 8) + (24 * 4 + 4) + (4 * N_OUT + N_OUT)
    # the concatenation by hand from the weights
    x = RNG.normal(size=(5, 10)).astype(np.float32)
    pre = [x @ np.asarray(b.kernel) + np.asarray(b.bias) for b in branches]
    by_hand = np.concatenate([np.maximum(pre[0], 0), np.tanh(pre[1]), 1 / (1 + np.exp(-pre[2]))], axis=1)
    concat = np.asarray(layer_model(model, "concat").predict_on_batch(x))
    assert np.allclose(concat, by_hand, atol=1e-5)
    # the seed's genres_allmusic sizes are the architecture's defaults
    d = default_cnn("6")
    assert (d.n_dense, d.n_dense_2, d.dropout_factor, d.final_activation) == (2048, 1024, 0.5, "sigmoid")


# ---------------------------------------------------------------------------- -l indices
# The seed's model.layers[N] (what its `predict.py -l N` took), written from src/models.py at
# b214f66 and Keras 2.1.5 (its requirements.txt): a Sequential model lists the layers given to
# add() (no input layer; a nested Model is one layer); a functional Model lists every layer with its
# inputs, by decreasing depth, ties in the order met walking back from the output. Our name with the
# same output follows each entry. `Dense(..., activation=a)` is one layer there.
SEED_LAYERS = {
    # get_model_3 (functional) with n_dense, n_dense_2 > 0 and a linear head (dummy_text_vsm's shape;
    # its README's `-l 5` is the second hidden layer)
    ("3", "linear"): [("Input", "input_1"), ("Dropout", "dropout_input"), ("Dense relu", "dense_1"),
                      ("Dropout", "dropout_1"), ("Dense relu", "dense_2"), ("Dropout", "dropout_2"),
                      ("Dense linear", "output"), ("Lambda l2_normalize", "l2_normalize")],
    # get_model_4 (Sequential, CNN-non-static), two filter sizes, softmax: Embedding, Dropout, the
    # Model of Conv1D + GlobalMaxPooling1D per size merged, Dense(n_dense), Dropout, Activation relu,
    # Dense(n_out), Activation
    ("4", "softmax"): [("Embedding", "embedding"), ("Dropout", "dropout_embedding"), ("Model", "concat"),
                       ("Dense", "fc_1"), ("Dropout", "dropout_dense_1"), ("Activation relu", "dense_1"),
                       ("Dense", "logits"), ("Activation softmax", "output")],
    # get_model_6 (functional), n_dense and n_dense_2 > 0, sigmoid (genres_allmusic's shape)
    ("6", "sigmoid"): [("Input", "input_1"), ("Dense relu", "branch_relu"), ("Dense tanh", "branch_tanh"),
                       ("Dense sigmoid", "branch_sigmoid"), ("merge concat", "concat"),
                       ("Dropout", "dropout_branches"), ("Dense relu", "dense_2"), ("Dropout", "dropout_2"),
                       ("Dense sigmoid", "output")],
    # get_model_12 (Sequential) with n_filters_3, n_filters_4 > 0, n_filters_5 = 0, n_dense = 0, linear
    ("12", "linear"): [("Model", "concat"), ("MaxPooling2D", "pool_1"), ("Dropout", "dropout_1"),
                       ("Convolution2D", "conv_2"), ("Activation", "act_2"), ("MaxPooling2D", "pool_2"),
                       ("Dropout", "dropout_2"), ("Convolution2D", "conv_3"), ("Activation", "act_3"),
                       ("MaxPooling2D", "pool_3"), ("Dropout", "dropout_3"), ("Convolution2D", "conv_4"),
                       ("Activation", "act_4"), ("MaxPooling2D", "pool_4"), ("Dropout", "dropout_4"),
                       ("Flatten", "flat"), ("Dense", "logits"), ("Activation linear", "output"),
                       ("Lambda l2_normalize", "l2_normalize")],
    # get_model_31 (functional), softmax
    ("31", "softmax"): [("Input", "input_1"), ("Input", "input_2"), ("BatchNormalization", "bn_1"),
                        ("BatchNormalization", "bn_2"), ("Dropout", "dropout_input_1"),
                        ("Dropout", "dropout_input_2"), ("Dense relu", "dense_1"), ("Dense relu", "dense_2"),
                        ("Dropout", "dropout_1"), ("Dropout", "dropout_2"), ("merge concat", "concat"),
                        ("Dense softmax", "output")],
    # get_model_32 (functional) with n_dense > 0, linear (rec_multi's shape)
    ("32", "linear"): [("Input", "input_1"), ("Input", "input_2"), ("Lambda l2", "l2_input_1"),
                       ("Lambda l2", "l2_input_2"), ("merge concat", "concat"), ("Dropout", "dropout_concat"),
                       ("Dense relu", "dense_1"), ("Dense linear", "output"), ("Lambda l2_normalize", "l2_normalize")],
    # get_model_33 (functional) with n_dense = 0, sigmoid (logistic_multilabel_tri)
    ("33", "sigmoid"): [("Input", "input_1"), ("Input", "input_2"), ("Input", "input_3"),
                        ("Lambda l2", "l2_input_1"), ("Lambda l2", "l2_input_2"), ("Lambda l2", "l2_input_3"),
                        ("merge concat", "concat"), ("Dropout", "dropout_concat"), ("Dense sigmoid", "output")],
    # get_model_34 (functional) with n_dense = 0, softmax (single-label-all)
    ("34", "softmax"): [("Input", "input_1"), ("Input", "input_2"), ("Input", "input_3"), ("Input", "input_4"),
                        ("Lambda l2", "l2_input_1"), ("Lambda l2", "l2_input_2"), ("Lambda l2", "l2_input_3"),
                        ("Lambda l2", "l2_input_4"), ("merge concat", "concat"), ("Dropout", "dropout_concat"),
                        ("Dense softmax", "output")],
    # get_model_1 (Sequential), two blocks, n_dense = 0, softmax: the seed's README `-l 9`
    ("1", "softmax"): [("Convolution2D", "conv_1"), ("Activation relu", "act_1"), ("MaxPooling2D", "pool_1"),
                       ("Dropout", "dropout_1"), ("Convolution2D", "conv_2"), ("Activation relu", "act_2"),
                       ("MaxPooling2D", "pool_2"), ("Dropout", "dropout_2"), ("Flatten", "flat"),
                       ("Dense", "logits"), ("Activation softmax", "output")],
}
SEED_CONFIGS = {
    "3": (dict(n_dense=8, n_dense_2=6), [(12,)]),
    "4": (dict(vocab_size=20, embedding_dim=4, num_filters=3, filter_sizes=(2, 3), n_dense=5), [(9,)]),
    "6": (dict(n_dense=8, n_dense_2=4), [(12,)]),
    "12": (dict(n_filters_2=4, n_filters_3=4, n_filters_4=4, n_kernel_3=(2, 1), n_kernel_4=(1, 1),
                n_pool_1=(2, 1), n_pool_2=(2, 1), n_pool_3=(1, 1), n_pool_4=(1, 1), n_dense=0), [PATCH]),
    "31": (dict(n_dense=6), [(12,), (7,)]),
    "32": (dict(n_dense=6), [(12,), (7,)]),
    "33": (dict(n_dense=0), [(12,), (7,), (5,)]),
    "34": (dict(n_dense=0), [(12,), (7,), (5,), (4,)]),
    "1": (dict(n_filters_1=4, n_filters_2=4, n_dense=0), [PATCH]),
}


@pytest.mark.parametrize("arch_id, head", sorted(SEED_LAYERS, key=lambda k: int(k[0])))
def test_layer_indices_are_the_seeds(arch_id, head):
    overrides, shapes = SEED_CONFIGS[arch_id]
    model = build_model(default_cnn(arch_id, final_activation=head, **overrides), shapes, N_OUT)
    table = SEED_LAYERS[(arch_id, head)]
    for index, (seed_layer, name) in enumerate(table):
        assert resolve_layer(model, index).name == name, (arch_id, index, seed_layer)
        assert resolve_layer(model, str(index)).name == name
    with pytest.raises(ConfigError, match=f"layer index {len(table)} out of range"):
        resolve_layer(model, len(table))
    assert resolve_layer(model, "logits").name == "logits"  # every name still works


def test_layer_indices_mean_the_seeds_outputs():
    """Numbers behind three indices: the seed's pre-activation Dense and its relu in architecture 4,
    the tanh and sigmoid branches of 6, the relu hidden layer that README's `-l 5` took in 3."""
    overrides, shapes = SEED_CONFIGS["4"]
    model = build_model(default_cnn("4", final_activation="softmax", **overrides), shapes, N_OUT)
    x = RNG.integers(0, 20, size=(16, 9)).astype(np.int32)
    pre = np.asarray(layer_model(model, 3).predict_on_batch(x))
    relu = np.asarray(layer_model(model, 5).predict_on_batch(x))
    assert (pre < 0).any() and np.allclose(relu, np.maximum(pre, 0), atol=1e-6)
    # CNN-static: the seed's model had no Embedding layer (its input was embedded text)
    static = build_model(default_cnn("4", final_activation="softmax", embedding_trainable=False, **overrides),
                         shapes, N_OUT)
    assert [resolve_layer(static, i).name for i in range(3)] == ["dropout_embedding", "concat", "fc_1"]

    six = build_model(default_cnn("6", final_activation="sigmoid", **SEED_CONFIGS["6"][0]), [(12,)], N_OUT)
    v = RNG.normal(size=(16, 12)).astype(np.float32)
    tanh, sigm = (np.asarray(layer_model(six, i).predict_on_batch(v)) for i in (2, 3))
    assert (np.abs(tanh) < 1).all() and (tanh < 0).any() and ((sigm > 0) & (sigm < 1)).all()
    probs = np.asarray(layer_model(six, 8).predict_on_batch(v))
    assert np.allclose(probs, np.asarray(six.predict_on_batch(v)), atol=1e-6)

    three = build_model(default_cnn("3", final_activation="linear", **SEED_CONFIGS["3"][0]), [(12,)], N_OUT)
    hidden = np.asarray(layer_model(three, 5).predict_on_batch(v))
    assert hidden.shape == (16, 6) and (hidden >= 0).all()
    raw, unit = (np.asarray(layer_model(three, i).predict_on_batch(v)) for i in (6, 7))
    norm = np.linalg.norm(raw, axis=1, keepdims=True)
    live = norm[:, 0] > 1e-3  # a row whose relu layer is all 0 has no direction
    assert live.sum() >= 8 and np.allclose(unit[live], raw[live] / norm[live], atol=1e-5)


def test_architectures_table_shows_seed_index_and_name(capsys):
    assert main(["architectures", "3", "12"]) == 0
    out = capsys.readouterr().out
    assert "5:dropout_2 -:logits 6:output" in out  # logits: no seed index, reachable by name
    assert "-:branch_6 0:concat 1:pool_1" in out


# ------------------------------------------------------------------------------- cnn.init
def test_init_uniform_is_the_seeds_and_glorot_stays_the_default():
    assert default_cnn("1").init == "glorot_uniform"
    seed = build_model(default_cnn("1", n_filters_1=64, n_filters_2=64, init="uniform"), [(40, 32, 1)], 50)
    for name in ("conv_1", "conv_2", "logits"):
        w = np.asarray(seed.get_layer(name).kernel).ravel()
        assert np.abs(w).max() <= 0.05 and np.abs(w).max() > 0.049  # U(-0.05, 0.05)
        assert abs(w.std() - 0.05 / np.sqrt(3)) < 0.003 and abs(w.mean()) < 0.003
        assert not np.asarray(seed.get_layer(name).bias).any()
    glorot = build_model(default_cnn("1", n_filters_1=64, n_filters_2=64), [(40, 32, 1)], 50)
    w = np.asarray(glorot.get_layer("conv_1").kernel)  # fan in 4 x 32, fan out 4 x 32 x 64
    limit = np.sqrt(6 / (4 * 32 + 4 * 32 * 64))
    assert np.abs(w).max() <= limit + 1e-7 and limit < 0.04
    # architecture 4: only the output layer was init="uniform" in the seed
    overrides, shapes = SEED_CONFIGS["4"]
    text = build_model(default_cnn("4", init="uniform", **overrides), shapes, 50)
    assert np.abs(np.asarray(text.get_layer("logits").kernel)).max() <= 0.05
    conv = np.asarray(text.get_layer("conv_1").kernel)
    assert np.abs(conv).max() > 0.05  # glorot: fan in 2 x 4, fan out 2 x 3 -> limit 0.65
    with pytest.raises(ConfigError, match="cnn.init"):
        Registry().experiment("dummy_audio", ["cnn.init='normal'"])
