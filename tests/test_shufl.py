"""Architecture 51 (shufl, Dieleman-style 1-D CNN): building, a training step, safe-mode reload,
layer extraction, and learning 40-d tag-vector-like targets through ``tartarus.train.run``."""

import shutil

import numpy as np
import pytest

from tartarus.config import Registry
from tartarus.errors import ConfigError
from tartarus.fileio import load_npy, read_lines
from tartarus.models import build_model, describe_layers, get_architecture, layer_model, load_model, resolve_layer
from tartarus.predict import predict
from tartarus.pipeline import run_experiment as run  # train -> predict -> evaluate
from tartarus.train import compile_model
from tests.conftest import REPO, write_tiny_dataset

SMALL = {"n_filters_1": 8, "n_filters_2": 8, "n_filters_3": 16, "n_filters_4": 16, "n_dense": 32, "n_dense_2": 24}
LAYERS = ["0:frames", "1:conv_1", "2:act_1", "3:pool_1", "4:conv_2", "5:act_2", "6:pool_2", "7:conv_3",
          "8:act_3", "9:pool_3", "10:conv_4", "11:act_4", "12:global_mean", "13:global_max", "14:pooled",
          "15:dense_1", "16:dropout_dense_1", "17:dense_2", "18:dropout_dense_2", "19:logits", "20:output",
          "21:l2_normalize"]


def shufl(name="shufl", **overrides):
    return Registry().experiment(name, [f"cnn.{k}={v!r}" for k, v in overrides.items()])


def unit_rows(a):
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def test_registry_entries_validate_without_the_dataset_entry():
    reg = Registry()
    for name, loss in (("shufl", "cosine"), ("shufl_mse", "mse")):
        e = reg.experiment(name)
        assert (e.dataset.dataset, e.dataset.fact, e.dataset.dim, e.dataset.npatches) == ("MTAT", "d2v", 40, 1)
        assert (e.training.loss_func, e.training.normalize_y, e.training.optimizer) == (loss, True, "adam")
        assert (e.cnn.architecture, e.cnn.final_activation, e.cnn.n_dense, e.cnn.n_dense_2) == ("51", "linear", 2048, 2048)
    assert get_architecture("51").input_kind == "patches"


def test_real_shape_builds_with_the_papers_sizes():
    model = build_model(shufl().cnn, (599, 128, 1), 40)
    assert describe_layers(model).split(", ") == LAYERS
    assert model.output.shape == (None, 40)
    # 599 -3 -> 596, /4 -> 149, -3 -> 146, /2 -> 73, -3 -> 70, /2 -> 35, -3 -> 32 frames of 512 filters
    assert model.get_layer("act_4").output.shape == (None, 32, 512)
    assert model.get_layer("pooled").output.shape == (None, 1024)
    convs = 4 * 128 * 256 + 256 + 4 * 256 * 256 + 256 + 4 * 256 * 512 + 512 + 4 * 512 * 512 + 512
    dense = 1024 * 2048 + 2048 + 2048 * 2048 + 2048 + 2048 * 40 + 40
    assert model.count_params() == convs + dense == 8_345_128


def test_train_step_predict_reload_and_layers(tmp_path):
    exp = shufl(**SMALL)
    model = build_model(exp.cnn, (64, 16, 1), 40, input_stats=(-40.0, 5.0))
    assert describe_layers(model).split(", ") == LAYERS  # 64 -> 61 -> 15 -> 12 -> 6 -> 3 -> 1 -> 1
    compile_model(model, exp)
    rng = np.random.default_rng(0)
    x = rng.normal(-40, 5, size=(6, 64, 16, 1)).astype(np.float32)
    y = unit_rows(rng.normal(size=(6, 40))).astype(np.float32)
    before = np.asarray(model.predict_on_batch(x))
    loss = float(np.ravel(np.asarray(model.train_on_batch(x, y), dtype=float))[0])  # loss [, metrics]
    assert np.isfinite(loss) and -1.0 <= loss <= 1.0  # keras' cosine loss is -cos
    out = np.asarray(model.predict_on_batch(x))
    assert out.shape == (6, 40) and not np.allclose(out, before)
    assert np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)
    path = tmp_path / "shufl.keras"
    model.save(path)
    again = load_model(path)
    assert again.name == "tartarus_arch_51"
    assert np.allclose(np.asarray(again.predict_on_batch(x)), out, atol=1e-6)
    assert resolve_layer(again, 14).name == "pooled" and resolve_layer(again, 17).name == "dense_2"
    pooled = np.asarray(layer_model(again, "pooled").predict_on_batch(x))
    hidden = np.asarray(layer_model(again, "dense_2").predict_on_batch(x))
    assert pooled.shape == (6, 32) and hidden.shape == (6, 24) and (hidden >= 0).all()
    # the pooled features are the mean then the max over time of the last activation
    act = np.asarray(layer_model(again, "act_4").predict_on_batch(x))
    assert np.allclose(pooled, np.concatenate([act.mean(axis=1), act.max(axis=1)], axis=1), atol=1e-5)


def test_standardize_blocks_and_dense_defaults():
    model = build_model(shufl(**{**SMALL, "n_filters_4": 0, "n_dense": 0}, batch_norm=True).cnn, (64, 16, 1), 40,
                        input_stats=(-50.0, 5.0))
    names = [layer.name for layer in model.layers]
    assert "conv_4" not in names and "bn_1" in names
    # n_dense = 0: no first dense layer (it meant 2048 before; architecture 51's defaults state 2048)
    assert "dense_1" not in names and model.get_layer("dense_2").units == 24
    assert np.allclose(np.asarray(model.get_layer("standardize")(np.full((1, 64, 16, 1), -45.0, np.float32))), 1.0)
    with pytest.raises(ConfigError, match="takes \\(frames, bins, 1\\) patches"):
        build_model(shufl(**SMALL).cnn, (64, 16, 2), 40)
    with pytest.raises(ConfigError, match="no convolution"):
        build_model(shufl(n_filters_1=0, n_filters_2=0, n_filters_3=0, n_filters_4=0).cnn, (64, 16, 1), 40)


# ------------------------------------------------------------------ learning through train.run
TINY_SHUFL = """
[tiny_shufl]
base = "shufl"
description = "shufl on a tiny learnable dataset"
dataset = { dataset = "TINY", dim = 40, npatches = 2, window = 1 }
training = { n_epochs = 12, n_minibatch = 8, learning_rate = 0.002, patience = 20 }
cnn = { n_filters_1 = 16, n_filters_2 = 16, n_filters_3 = 32, n_filters_4 = 32, n_pool_1 = [2, 1], n_dense = 32, n_dense_2 = 32, dropout_factor = 0.1 }
"""


def write_tag_vectors(layout, ds="TINY", dim=40, seed=1):
    """Per-item 40-d targets: the item's class prototype plus noise (class = 2nd character of the id)."""
    rng = np.random.default_rng(seed)
    prototypes = rng.normal(size=(3, dim))
    for set_ in ("train", "val", "test"):
        classes = [int(item[1]) for item in read_lines(layout.items_index(set_, ds))]
        np.save(layout.y(set_, "d2v", dim, ds), prototypes[classes] + 0.3 * rng.normal(size=(len(classes), dim)))


@pytest.fixture
def shufl_experiments(experiments_dir):
    shutil.copy(REPO / "experiments" / "shufl.toml", experiments_dir / "shufl.toml")
    (experiments_dir / "tiny_shufl.toml").write_text(TINY_SHUFL)
    return experiments_dir


def test_learns_tag_vectors_through_run(tmp_path, shufl_experiments):
    layout = write_tiny_dataset(tmp_path / "data", n_per_class=8, frames=32)
    write_tag_vectors(layout)
    exp = Registry(shufl_experiments).experiment("tiny_shufl")
    assert exp.cnn.architecture == "51" and exp.training.loss_func == "cosine"
    result = run(exp, (), layout, verbose=0, evaluate=False)
    history = result.history
    assert history["loss"][-1] < history["loss"][0] - 0.2
    predict(layout, result.model_id, ["test"])
    pred = load_npy(layout.prediction(result.model_id, "test"))
    ids = read_lines(layout.prediction_index(result.model_id, "test"))
    order = {item: i for i, item in enumerate(read_lines(layout.items_index("test", "TINY")))}
    truth = unit_rows(load_npy(layout.y("test", "d2v", 40, "TINY")))[[order[i] for i in ids]]
    baseline = unit_rows(load_npy(layout.y("train", "d2v", 40, "TINY")).mean(axis=0, keepdims=True))
    model_cos = float((unit_rows(pred) * truth).sum(axis=1).mean())
    constant_cos = float((truth @ baseline.T).mean())  # the best constant guess under a cosine loss
    assert model_cos > constant_cos + 0.2, (model_cos, constant_cos)
    predict(layout, result.model_id, ["test"], layer="pooled")
    assert load_npy(layout.x("test", f"{result.model_id}-pred_pooled", "TINY")).shape == (3, 64)


# ------------------------------------------------------------------ shufl as its own code
def test_shufl_seed_entry_is_shufls_code():
    """iogakos/shufl scripts/shufl.py (network, loss, updates), prepare_dataset.py (spectrograms)."""
    reg = Registry()
    e = reg.experiment("shufl_seed")
    c, t = e.cnn, e.training
    assert (c.n_filters_1, c.n_filters_2, c.n_filters_3, c.n_filters_4, c.n_filters_5) == (256, 256, 256, 512, 0)
    assert [c.n_kernel_1[0], c.n_kernel_2[0], c.n_kernel_3[0], c.n_kernel_4[0]] == [4, 4, 4, 4]
    assert [c.n_pool_1[0], c.n_pool_2[0], c.n_pool_3[0], c.n_pool_4[0]] == [4, 2, 2, 1]
    assert (c.n_dense, c.n_dense_2, c.dense_activations, c.dropout_before_dense, c.dropout_factor) == \
        (2048, 2048, ("softmax", "relu"), True, 0.5)
    assert (c.final_activation, e.dataset.dim, t.loss_func, t.normalize_y) == ("elu", 40, "mse", False)
    assert (t.optimizer, t.learning_rate, t.momentum, t.nesterov, t.n_minibatch) == ("sgd", 0.005, 0.9, True, 500)
    assert (t.n_epochs, t.early_stopping) == (200, False)
    entry = reg.dataset(e.dataset.dataset)
    assert (entry.name, entry.resample_sr, entry.n_fft, entry.hop, entry.n_mels, entry.log) == \
        ("MTAT_shufl", 16000, 3116, 779, 128, False)
    assert int(e.dataset.window * entry.resample_sr / entry.hop) == 599
    model = build_model(c, (599, 128, 1), 40)
    names = describe_layers(model).split(", ")
    assert names[14:] == ["14:pooled", "15:dropout_dense_1", "16:dense_1", "17:dropout_dense_2", "18:dense_2",
                          "19:dropout_head", "20:logits", "21:output"]  # dropout on the input of each dense layer
    assert model.get_layer("dense_1").activation.__name__ == "softmax"
    assert model.get_layer("dense_2").activation.__name__ == "relu"
    # 599 -> 596 /4 149 -> 146 /2 73 -> 70 /2 35 -> 32 frames of 512 filters; mean + max: 1024
    assert model.get_layer("act_4").output.shape == (None, 32, 512)
    convs = 4 * 128 * 256 + 256 + 2 * (4 * 256 * 256 + 256) + 4 * 256 * 512 + 512
    dense = 1024 * 2048 + 2048 + 2048 * 2048 + 2048 + 2048 * 40 + 40
    assert model.count_params() == convs + dense == 7_558_440
    x = np.random.default_rng(0).normal(size=(3, 599, 128, 1)).astype(np.float32)
    out = np.asarray(model.predict_on_batch(x))
    assert out.shape == (3, 40) and (out > -1).all()  # ELU, no L2 normalisation
    with pytest.raises(ConfigError, match="dense_activations"):
        build_model(shufl(**SMALL, dense_activations=["relu"]).cnn, (64, 16, 1), 40)
    with pytest.raises(ConfigError, match="'gelu' is not one of"):
        build_model(shufl(**SMALL, dense_activations=["relu", "gelu"]).cnn, (64, 16, 1), 40)


def test_shufl_seed_spectrogram_is_librosas_linear_mel():
    """prepare_dataset.py: librosa.feature.melspectrogram(y, sr=16000, n_mels=128, fmax=sr/2,
    n_fft=3116, hop_length=779), power, no log."""
    import librosa
    from tartarus.audio.features import spectrogram
    entry = Registry().dataset("MTAT_shufl")
    rng = np.random.default_rng(0)
    t = np.arange(16000 * 2) / 16000
    y = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.normal(size=t.size)).astype(np.float32)
    ours = spectrogram(y, entry)
    want = librosa.feature.melspectrogram(y=y, sr=16000, n_mels=128, fmax=8000, n_fft=3116, hop_length=779).T
    assert ours.shape == want.shape == (1 + y.size // 779, 128)
    assert np.allclose(ours, want, rtol=1e-3, atol=1e-6 * want.max())
