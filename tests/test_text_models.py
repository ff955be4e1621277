"""Architectures 3, 4, 6, 31-34: build, one training step, predict, safe-mode reload, layer models."""

import json

import keras
import numpy as np
import pytest

from tartarus.config import Registry, experiment_from_dict, parse_override
from tartarus.config.families import FAMILIES
from tartarus.config.schema import CnnSection
from tartarus.errors import ConfigError
from tartarus.models import (ARCHITECTURES, build_model, describe_layers, get_architecture, layer_model,
                             load_model, resolve_layer)
from tests.conftest import run_on_backend

RNG = np.random.default_rng(0)
N_OUT = 3
BATCH = 4


def cnn(**overrides):
    """A CnnSection of dummy_audio's settings that the chosen architecture reads (setting a key it does
    not read is an error), with ``overrides`` through --set parsing and coercion."""
    raw = Registry().raw_experiment("dummy_audio")
    sets = [parse_override(f"cnn.{k}={v!r}") for k, v in overrides.items()]
    arch = str(dict(sets).get(("cnn", "architecture"), raw["cnn"].get("architecture", "1")))
    raw["cnn"] = {k: v for k, v in raw["cnn"].items() if k in FAMILIES[arch].keys()}
    for (_, key), value in sets:
        raw["cnn"][key] = value
    return experiment_from_dict("dummy_audio", raw).cnn


def vectors(*dims, n=BATCH):
    return [RNG.normal(size=(n, d)).astype(np.float32) for d in dims]


def sequences(vocab, length, n=BATCH):
    return RNG.integers(0, vocab, size=(n, length)).astype(np.int32)


def one_hot(n=BATCH):
    return np.eye(N_OUT, dtype=np.float32)[np.arange(n) % N_OUT]


def feed(x):
    return x[0] if isinstance(x, list) and len(x) == 1 else x


def step_predict_reload(model, x, tmp_path, loss="categorical_crossentropy"):
    """One training step, then the reloaded (safe mode) model must predict exactly the same."""
    model.compile(optimizer="adam", loss=loss)
    loss_value = model.train_on_batch(feed(x), one_hot())
    assert np.isfinite(float(np.asarray(loss_value).ravel()[0]))
    out = np.asarray(model.predict_on_batch(feed(x)))
    assert out.shape == (BATCH, N_OUT) and np.isfinite(out).all()
    path = tmp_path / f"{model.name}.keras"
    model.save(path)
    again = load_model(path)
    assert again.name == model.name
    assert np.allclose(np.asarray(again.predict_on_batch(feed(x))), out, atol=1e-6)
    assert describe_layers(again) == describe_layers(model)
    return again, out


# ---------------------------------------------------------------- architecture 3 (text VSM MLP)
def test_arch3_dense_numbering_and_l5_is_hidden(tmp_path):
    c = cnn(architecture="3", n_dense=32, n_dense_2=16, final_activation="softmax")
    model = build_model(c, [(50,)], N_OUT)
    # the seed's get_model_3 (functional): its output Dense held the softmax, so logits has no index
    assert describe_layers(model) == ("0:input_1, 1:dropout_input, 2:dense_1, 3:dropout_1, 4:dense_2, "
                                      "5:dropout_2, 6:output")
    x = vectors(50)
    again, out = step_predict_reload(model, x, tmp_path)
    assert np.allclose(out.sum(axis=1), 1, atol=1e-5)
    hidden = np.asarray(layer_model(again, 5).predict_on_batch(x[0]))
    assert hidden.shape == (BATCH, 16) and (hidden >= 0).all()  # relu output of the last hidden layer
    assert np.allclose(hidden, np.asarray(layer_model(again, "dense_2").predict_on_batch(x[0])))
    assert np.asarray(layer_model(again, "dense_1").predict_on_batch(x[0])).shape == (BATCH, 32)


def test_arch3_one_or_no_hidden_layer_and_linear_head():
    model = build_model(cnn(architecture="3", n_dense=8, final_activation="linear"), [(20,)], 5)
    assert describe_layers(model) == "0:input_1, 1:dropout_input, 2:dense_1, 3:dropout_1, 4:output, 5:l2_normalize"
    out = np.asarray(model.predict_on_batch(vectors(20)[0]))
    assert np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)
    bare = build_model(cnn(architecture="3", final_activation="linear"), [(20,)], 5)  # n_dense = 0: a linear model
    assert [l.name for l in bare.layers] == ["input_1", "dropout_input", "logits", "output", "l2_normalize"]


# ---------------------------------------------------------------- architecture 4 (text CNN)
def text_cnn(**overrides):
    base = dict(architecture="4", embedding_dim=8, filter_sizes=[2, 3], num_filters=6, n_dense=10,
                dropout_prob=[0.5, 0.5], final_activation="softmax")
    return cnn(**{**base, **overrides})


def test_arch4_from_embedding_matrix(tmp_path):
    emb = RNG.normal(size=(30, 8)).astype(np.float32)
    model = build_model(text_cnn(), [(12,)], N_OUT, embedding=emb)
    # the seed's get_model_4 (Sequential): the convolutions are one nested sub-model (concat), and its
    # hidden layer is Dense, Dropout, Activation
    assert describe_layers(model) == ("0:embedding, 1:dropout_embedding, 2:concat, 3:fc_1, 4:dropout_dense_1, "
                                      "5:dense_1, 6:logits, 7:output")
    assert np.array_equal(np.asarray(model.get_layer("embedding").embeddings), emb)
    assert model.get_layer("embedding").trainable
    x = [sequences(30, 12)]
    again, _ = step_predict_reload(model, x, tmp_path)
    assert not np.allclose(np.asarray(model.get_layer("embedding").embeddings), emb)  # non-static: it learns
    config = json.dumps(again.get_layer("embedding").get_config())
    assert "Constant" not in config  # the matrix is a weight, not a constant initializer
    hidden = np.asarray(layer_model(again, "dense_1").predict_on_batch(x[0]))
    assert hidden.shape == (BATCH, 10)
    assert np.allclose(hidden, np.asarray(layer_model(again, 5).predict_on_batch(x[0])))
    assert (hidden >= 0).all()  # relu output
    assert np.asarray(layer_model(again, "concat").predict_on_batch(x[0])).shape == (BATCH, 12)


def test_arch4_static_embedding_is_frozen(tmp_path):
    emb = RNG.normal(size=(30, 8)).astype(np.float32)
    model = build_model(text_cnn(embedding_trainable=False), [(12,)], N_OUT, embedding=emb)
    conv_before = np.asarray(model.get_layer("conv_1").kernel).copy()
    again, _ = step_predict_reload(model, [sequences(30, 12)], tmp_path)
    assert np.array_equal(np.asarray(model.get_layer("embedding").embeddings), emb)
    assert not np.allclose(np.asarray(model.get_layer("conv_1").kernel), conv_before)  # the rest learns
    assert not again.get_layer("embedding").trainable


def test_arch4_random_embedding_one_filter_size(tmp_path):
    model = build_model(text_cnn(vocab_size=25, filter_sizes=[3], n_dense=0, final_activation="linear"),
                        [(10,)], N_OUT)
    assert describe_layers(model) == ("0:embedding, 1:dropout_embedding, 2:pool_1, 3:dropout_features, "
                                      "4:logits, 5:output, 6:l2_normalize")
    assert model.get_layer("embedding").embeddings.shape == (25, 8)
    step_predict_reload(model, [sequences(25, 10)], tmp_path, loss="cosine_similarity")


def test_arch4_config_errors():
    emb = np.zeros((30, 5), np.float32)
    with pytest.raises(ConfigError, match=r"embedding matrix has dim 5 but cnn.embedding_dim is 8"):
        build_model(text_cnn(), [(12,)], N_OUT, embedding=emb)
    with pytest.raises(ConfigError, match="cnn.vocab_size"):
        build_model(text_cnn(), [(12,)], N_OUT)
    with pytest.raises(ConfigError, match="cnn.filter_sizes"):
        build_model(text_cnn(vocab_size=9, filter_sizes=[20]), [(12,)], N_OUT)
    with pytest.raises(ConfigError, match=r"cnn.architecture 4 takes 1 input, got 2"):
        build_model(text_cnn(vocab_size=9), [(12,), (12,)], N_OUT)


# ---------------------------------------------------------------- architecture 6 (parallel branches)
def test_arch6_branches(tmp_path):
    model = build_model(cnn(architecture="6", n_dense=12, n_dense_2=6, final_activation="sigmoid"), [(20,)], N_OUT)
    assert describe_layers(model) == ("0:input_1, 1:branch_relu, 2:branch_tanh, 3:branch_sigmoid, 4:concat, "
                                      "5:dropout_branches, 6:dense_2, 7:dropout_2, 8:output")
    x = vectors(20)
    again, _ = step_predict_reload(model, x, tmp_path, loss="binary_crossentropy")
    assert np.asarray(layer_model(again, "concat").predict_on_batch(x[0])).shape == (BATCH, 36)
    # n_dense_2 = 0: no layer after the branches; n_dense = 0: no branches
    plain = build_model(cnn(architecture="6", n_dense=7, final_activation="linear"), [(20,)], N_OUT)
    assert [l.name for l in plain.layers] == ["input_1", "branch_relu", "branch_tanh", "branch_sigmoid", "concat",
                                             "dropout_branches", "logits", "output", "l2_normalize"]
    bare = build_model(cnn(architecture="6", n_dense_2=5), [(20,)], N_OUT)
    assert [l.name for l in bare.layers][:3] == ["input_1", "dense_2", "dropout_2"]
    with pytest.raises(ConfigError, match="cnn.branch_dims: this key was removed; use instead: cnn.n_dense"):
        cnn(architecture="6", branch_dims=[12, 6])


# ---------------------------------------------------------------- fusion 31-34
def test_arch31_batchnorm_fusion(tmp_path):
    model = build_model(cnn(architecture="31", n_dense=8, final_activation="softmax"), [(10,), (6,)], N_OUT)
    assert [i.name for i in model.inputs] == ["input_1", "input_2"]
    assert resolve_layer(model, 0).name == "input_1" and resolve_layer(model, 1).name == "input_2"
    x = vectors(10, 6)
    again, _ = step_predict_reload(model, x, tmp_path)
    assert np.asarray(layer_model(again, "concat").predict_on_batch(x)).shape == (BATCH, 16)
    assert np.asarray(layer_model(again, 6).predict_on_batch(x)).shape == (BATCH, 8)  # dense_1


@pytest.mark.parametrize("arch, dims", [("32", (10, 6)), ("33", (10, 6, 4)), ("34", (10, 6, 4, 3))])
def test_l2_fusion(tmp_path, arch, dims):
    model = build_model(cnn(architecture=arch, n_dense=8, final_activation="linear"), [(d,) for d in dims], N_OUT)
    n = len(dims)
    assert get_architecture(arch).n_inputs == n
    names = [l.name for l in model.layers]
    expected = [f"input_{i}" for i in range(1, n + 1)] + [f"l2_input_{i}" for i in range(1, n + 1)]
    assert names[:2 * n + 2] == expected + ["concat", "dropout_concat"]
    x = vectors(*dims)
    again, out = step_predict_reload(model, x, tmp_path, loss="cosine_similarity")
    assert np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)
    concat = np.asarray(layer_model(again, "concat").predict_on_batch(x))
    assert concat.shape == (BATCH, sum(dims))
    assert np.allclose(np.linalg.norm(concat[:, :dims[0]], axis=1), 1, atol=1e-5)
    scaled = [a.copy() for a in x]
    scaled[0][1] *= 7.5  # one row of one input, scaled by a positive constant
    scaled[-1][2] *= 0.01
    assert np.allclose(np.asarray(again.predict_on_batch(scaled)), out, atol=1e-5)


def test_l2_fusion_without_hidden_layer():
    model = build_model(cnn(architecture="32", final_activation="linear"), [(5,), (4,)], N_OUT)
    assert describe_layers(model) == ("0:input_1, 1:input_2, 2:l2_input_1, 3:l2_input_2, 4:concat, "
                                      "5:dropout_concat, 6:output, 7:l2_normalize")


@pytest.mark.parametrize("arch, shapes, expected", [
    ("3", [(5,), (5,)], "cnn.architecture 3 takes 1 input, got 2"),
    ("6", [], "cnn.architecture 6 takes 1 input, got 0"),
    ("31", [(5,)], "cnn.architecture 31 takes 2 inputs, got 1"),
    ("32", [(5,), (5,), (5,)], "cnn.architecture 32 takes 2 inputs, got 3"),
    ("33", [(5,), (5,)], "cnn.architecture 33 takes 3 inputs, got 2"),
    ("34", [(5,)] * 3, "cnn.architecture 34 takes 4 inputs, got 3"),
    ("3", [(5, 2)], "cnn.architecture 3: input 1 must be vectors"),
])
def test_input_count_errors(arch, shapes, expected):
    with pytest.raises(ConfigError, match=expected):
        ARCHITECTURES[arch].builder(cnn(architecture=arch, n_dense=4), shapes, N_OUT)


def test_table_and_new_keys():
    kinds = {a: ARCHITECTURES[a].input_kind for a in ("3", "4", "6", "31", "32", "33", "34")}
    assert kinds == {"3": "vectors", "4": "sequences", "6": "vectors", "31": "several", "32": "several",
                     "33": "several", "34": "several"}
    assert ARCHITECTURES["3"].index_counts_inputs and not ARCHITECTURES["4"].index_counts_inputs
    c = CnnSection()
    assert (c.sequence_length, c.embedding_dim, c.filter_sizes, c.num_filters, c.dropout_prob, c.vocab_size,
            c.embedding_trainable, c.init) == (500, 300, (2, 3), 150, (0.5, 0.8), 0, True, "glorot_uniform")
    parsed = cnn(architecture="4", dropout_prob=[0, 0.5], filter_sizes=[3, 4, 5], embedding_trainable=False)
    assert parsed.dropout_prob == (0.0, 0.5) and isinstance(parsed.dropout_prob[0], float)
    assert parsed.filter_sizes == (3, 4, 5) and parsed.embedding_trainable is False
    with pytest.raises(ConfigError, match="cnn.dropout_prob"):
        cnn(architecture="4", dropout_prob=[0.5])
    with pytest.raises(ConfigError, match="cnn.filter_sizes"):
        cnn(architecture="4", filter_sizes=[2, "x"])
    with pytest.raises(ConfigError, match=r"cnn\.filter_sizes is not read by architecture 1 \(audio CNN\)"):
        cnn(filter_sizes=[3, 4])  # dummy_audio's architecture 1 has no filter sizes


# ---------------------------------------------------------------- other backends
BACKEND_SCRIPT = r"""
import json, sys, tempfile
from pathlib import Path
import numpy as np
import keras
from tartarus.config.schema import CnnSection
from tartarus.models import build_model, layer_model, load_model

rng = np.random.default_rng(0)
y = np.eye(3, dtype=np.float32)[[0, 1, 2, 0]]
report = {"backend": keras.backend.backend()}
emb = rng.normal(size=(30, 8)).astype(np.float32)
cases = {
    "4": (CnnSection(architecture="4", embedding_dim=8, filter_sizes=(2, 3), num_filters=6, n_dense=10,
                     embedding_trainable=False, final_activation="softmax"), [(12,)],
          rng.integers(0, 30, size=(4, 12)).astype(np.int32), {"embedding": emb}, "dense_1"),
    "32": (CnnSection(architecture="32", n_dense=8), [(10,), (6,)],
           [rng.normal(size=(4, 10)).astype(np.float32), rng.normal(size=(4, 6)).astype(np.float32)], {}, "concat"),
}
with tempfile.TemporaryDirectory() as tmp:
    for arch, (c, shapes, x, extra, layer) in cases.items():
        model = build_model(c, shapes, 3, **extra)
        model.compile(optimizer="adam", loss="categorical_crossentropy")
        loss = float(np.asarray(model.train_on_batch(x, y)).ravel()[0])
        out = np.asarray(model.predict_on_batch(x))
        path = Path(tmp) / f"m{arch}.keras"
        model.save(path)
        again = load_model(path)
        emb_after = np.asarray(again.get_layer("embedding").embeddings) if arch == "4" else None
        report[arch] = {"finite": bool(np.isfinite(loss) and np.isfinite(out).all()), "shape": list(out.shape),
                        "reload_same": bool(np.allclose(np.asarray(again.predict_on_batch(x)), out, atol=1e-5)),
                        "layer": list(np.asarray(layer_model(again, layer).predict_on_batch(x)).shape),
                        "frozen": None if emb_after is None else bool(np.array_equal(emb_after, emb))}
print(json.dumps(report))
"""


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_text_and_fusion_models_on_other_backends(backend):
    report = run_on_backend(backend, BACKEND_SCRIPT, timeout=300)[-1]
    assert report == {"backend": backend,
                      "4": {"finite": True, "shape": [4, 3], "reload_same": True, "layer": [4, 10], "frozen": True},
                      "32": {"finite": True, "shape": [4, 3], "reload_same": True, "layer": [4, 16], "frozen": None}}
    assert keras.backend.backend() == "tensorflow"  # this process is untouched
