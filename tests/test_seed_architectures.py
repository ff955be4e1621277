"""The seed's architectures 2, 5, 11, 12 and 41: each built from its default config on its example
shapes (one training step, predict, safe-mode reload, a named layer), the patches+vectors feed of
architecture 2, and architectures 2 and 41 end to end through ``tartarus.train.run``."""

import json

import h5py
import keras
import numpy as np
import pytest

from tartarus.config import Registry
from tartarus.errors import ConfigError, DataMismatch
from tartarus.fileio import load_npy, read_lines, save_npy
from tartarus.inputs import PatchVectorDataset, iter_patch_vector_batches, read_patch_index
from tartarus.models import (ARCHITECTURES, build_model, default_cnn, describe_layers, layer_model, load_model,
                             resolve_layer)
from tartarus.predict import predict
from tartarus.pipeline import run_experiment as run  # train -> predict -> evaluate
from tartarus.train import check_suffixes, load_split, make_dataset
from tests.conftest import write_tiny_dataset

N_OUT = 3
BATCH = 2

LAYERS = {
    "2": ("0:patches, 1:conv_1, 2:pool_1, 3:dropout_1, 4:conv_2, 5:pool_2, 6:dropout_2, 7:conv_3, 8:pool_3, "
          "9:dropout_3, 10:conv_4, 11:pool_4, 12:metadata, 13:dropout_4, 14:meta_dense, 15:flat, 16:meta_dropout, "
          "17:concat, 18:output, 19:l2_normalize"),
    "5": ("0:patches, 1:pad_time, 2:bn_freq, 3:conv_1, 4:bn_1, 5:act_1, 6:pool_1, 7:dropout_1, 8:conv_2, 9:bn_2, "
          "10:act_2, 11:pool_2, 12:dropout_2, 13:conv_3, 14:bn_3, 15:act_3, 16:pool_3, 17:dropout_3, 18:conv_4, "
          "19:bn_4, 20:act_4, 21:pool_4, 22:dropout_4, 23:sequence, 24:gru_1, 25:gru_2, 26:dropout_rnn, "
          "27:logits, 28:output"),
    "11": ("0:patches, 1:conv_1, 2:pool_1, 3:dropout_1, 4:conv_2, 5:pool_2, 6:dropout_2, 7:conv_3, 8:pool_3, "
           "9:dropout_3, 10:conv_4, 11:pool_4, 12:dropout_4, 13:flat, 14:output, 15:l2_normalize"),
    "12": ("0:concat, 1:pool_1, 2:dropout_1, 3:conv_2, 4:act_2, 5:pool_2, 6:dropout_2, 7:conv_3, 8:act_3, "
           "9:pool_3, 10:dropout_3, 11:conv_4, 12:act_4, 13:pool_4, 14:dropout_4, 15:flat, 16:logits, 17:output"),
    "41": "0:embedding, 1:lstm_1, 2:logits, 3:output, 4:l2_normalize",
}
# a named layer per architecture, its index and its output shape on the example shapes
NAMED = {"2": ("concat", 17, (4096 + 2048,)), "5": ("gru_2", 25, (32,)), "11": ("flat", 13, (4096,)),
         "12": ("concat", 0, (96, 96, 256)), "41": ("lstm_1", 1, (64,))}
# the seed's LSTM(2048) is what default_cnn("41") builds (see test_defaults_are_the_seeds), but
# TensorFlow's orthogonal initialiser of its recurrent kernel alone takes ~14 s per build (and
# again on reload), so the smoke test shrinks that one size
SMOKE_OVERRIDES = {"41": {"rnn_units": (64,)}}


def call(model, x):
    """The model's inference output as a numpy array (on every backend)."""
    return keras.ops.convert_to_numpy(model(x, training=False))


def example_inputs(arch, rng):
    xs = []
    for shape in arch.example_shapes:
        if arch.input_kind == "sequences":
            xs.append(rng.integers(0, default_cnn(arch.id).vocab_size, size=(BATCH, *shape)).astype(np.int32))
        else:
            xs.append(rng.normal(-40 if len(shape) == 3 else 0, 5 if len(shape) == 3 else 1,
                                 size=(BATCH, *shape)).astype(np.float32))
    return tuple(xs) if len(xs) > 1 else xs[0]


@pytest.mark.parametrize("arch_id", ["2", "5", "11", "12", "41"])
def test_default_model_trains_predicts_reloads_and_extracts(arch_id, tmp_path):
    arch = ARCHITECTURES[arch_id]
    extra = {"input_stats": (-40.0, 5.0)} if arch.input_kind != "sequences" else {}
    model = build_model(default_cnn(arch_id, **SMOKE_OVERRIDES.get(arch_id, {})), arch.example_shapes, N_OUT,
                        **extra)
    assert model.name == f"tartarus_arch_{arch_id}" and describe_layers(model) == LAYERS[arch_id]
    rng = np.random.default_rng(0)
    x = example_inputs(arch, rng)
    y = np.eye(N_OUT, dtype=np.float32)[np.arange(BATCH) % N_OUT]
    # one step each: TensorFlow's graph tracing would cost more than the step (JAX's jit does not)
    model.compile(optimizer="adam", loss="mse", run_eagerly=keras.backend.backend() == "tensorflow")
    before = call(model, x)
    loss = float(np.ravel(np.asarray(model.train_on_batch(x, y), dtype=float))[0])
    out = np.asarray(model.predict_on_batch(x))
    assert np.isfinite(loss) and out.shape == (BATCH, N_OUT) and np.isfinite(out).all()
    assert not np.allclose(out, before)
    if default_cnn(arch_id).final_activation == "linear":
        assert np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)
    path = tmp_path / f"arch_{arch_id}.keras"
    model.save(path)
    again = load_model(path)
    reloaded = call(again, x)
    assert np.allclose(reloaded, call(model, x), atol=1e-6) and np.allclose(reloaded, out, atol=1e-5)
    assert describe_layers(again) == LAYERS[arch_id]
    name, index, shape = NAMED[arch_id]
    assert resolve_layer(again, index).name == name
    emb = call(layer_model(again, name), x)
    assert emb.shape == (BATCH, *shape) and np.isfinite(emb).all()


def test_defaults_are_the_seeds():
    c2, c5, c11, c12, c41 = (default_cnn(a) for a in ("2", "5", "11", "12", "41"))
    for c in (c2, c11):  # the seed's params_1 blocks
        assert (c.n_filters_1, c.n_filters_2, c.n_filters_3, c.n_filters_4) == (1024, 1024, 2048, 2048)
        assert (c.n_kernel_1, c.n_kernel_4, c.n_pool_1, c.n_pool_3) == ((4, 96), (1, 1), (4, 1), (1, 1))
        assert c.final_activation == "linear"
    assert c2.n_dense == 2048
    assert (c5.n_filters_1, c5.n_filters_2, c5.n_filters_3, c5.n_filters_4, c5.activation) == (64, 128, 128, 128, "elu")
    assert [getattr(c5, f"n_pool_{i}") for i in range(1, 5)] == [(2, 2), (3, 3), (4, 4), (4, 4)]
    assert (c5.rnn_units, c5.rnn_dropout, c5.dropout_factor) == ((32, 32), 0.3, 0.1)
    assert (c12.n_filters_2, c12.n_filters_3, c12.n_filters_4) == (1024, 2048, 2048)
    assert (c41.rnn_units, c41.embedding_dim, c41.final_activation) == ((2048,), 300, "linear")
    assert ARCHITECTURES["2"].input_kind == "patches+vectors" and ARCHITECTURES["2"].n_inputs == 2
    assert ARCHITECTURES["41"].input_kind == "sequences"


def test_crnn_pads_time_like_the_seed_and_keeps_its_sequence():
    from tartarus.models.recurrent import time_padding
    assert time_padding(1366, (2, 3, 4, 4)) == (37, 37)  # Choi's 1366 -> 1440 frames
    model = build_model(default_cnn("5"), [(1366, 96, 1)], 50)
    assert model.get_layer("pad_time").output.shape[1] == 1440
    assert tuple(model.get_layer("sequence").output.shape[1:]) == (15, 128)  # the seed's Reshape((15, 128))
    assert model.get_layer("bn_freq").axis in (2, [2])
    assert model.get_layer("gru_1").units == 32 and model.get_layer("gru_2").units == 32


def test_build_errors():
    with pytest.raises(ConfigError, match="takes 2 inputs"):
        build_model(default_cnn("2"), [(96, 96, 1)], 3)
    with pytest.raises(ConfigError, match="must be vectors"):
        build_model(default_cnn("2"), [(96, 96, 1), (4, 4)], 3)
    with pytest.raises(ConfigError, match=r"takes \(frames, bins, 1\) patches"):
        build_model(default_cnn("11"), [(96, 96)], 3)
    with pytest.raises(ConfigError, match="no convolution"):
        build_model(default_cnn("5", n_filters_1=0, n_filters_2=0, n_filters_3=0, n_filters_4=0), [(96, 96, 1)], 3)
    with pytest.raises(ConfigError, match="cnn.vocab_size"):
        build_model(default_cnn("41", vocab_size=0), [(20,)], 3)
    with pytest.raises(ConfigError, match="embedding matrix has dim 4"):
        build_model(default_cnn("41"), [(20,)], 3, embedding=np.zeros((10, 4), np.float32))


def test_metadata_projection_is_optional():
    model = build_model(default_cnn("2", n_filters_3=0, n_filters_4=0, n_dense=0), [(40, 16, 1), (7,)], 3)
    names = [layer.name for layer in model.layers]
    assert "meta_dense" not in names and "conv_3" not in names
    flat = model.get_layer("flat").output.shape[-1]
    assert model.get_layer("concat").output.shape[-1] == flat + 7


# ------------------------------------------------------------------------ the patches+vectors feed
def test_patch_vector_feed_pairs_each_patch_with_its_items_row(tmp_path):
    layout = write_tiny_dataset(tmp_path / "data")
    path = layout.patches("train", "TINY", 2, 1)
    items = read_lines(layout.items_index("train", "TINY"))
    vec = np.arange(len(items), dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)  # row i is all i
    y = np.eye(3, dtype=np.float32)[[int(i[1]) for i in items]]
    with h5py.File(path, "r") as f:  # each random patch is told apart by its first value
        item_of_patch = dict(zip(f["features"][:, 0, 0, 0].tolist(), read_patch_index(path)))
    for in_memory in (True, False):
        for subset in (False, True):
            rows = list(range(0, len(items), 2)) if subset else list(range(len(items)))
            ids = [items[r] for r in rows]
            ds = PatchVectorDataset(path, [vec[rows]], y[rows], ids, batch_size=5, seed=1, in_memory=in_memory,
                                    subset=subset, n_jobs=1)
            seen = []
            for b in range(len(ds)):
                (patches, v), t = ds[b]
                assert patches.shape[1:] == (21, 16, 1) and v.shape == (len(patches), 3) and len(t) == len(patches)
                for patch, row, target in zip(patches, v[:, 0].astype(int), t):
                    item = item_of_patch[float(patch[0, 0, 0])]
                    assert items[row] == item and np.argmax(target) == int(item[1])
                    seen.append(item)
            assert sorted(seen) == sorted(i for i in item_of_patch.values() if i in ids)
            ds.close()
    with pytest.raises(DataMismatch, match="vector input has 2 rows"):
        PatchVectorDataset(path, [vec[:2]], y, items, n_jobs=1)


def test_prediction_batches_follow_the_file(tmp_path):
    layout = write_tiny_dataset(tmp_path / "data")
    path = layout.patches("test", "TINY", 2, 1)
    items = read_lines(layout.items_index("test", "TINY"))
    vec = np.arange(len(items), dtype=np.float32)[:, None]
    patch_rows = np.array([items.index(i) for i in read_patch_index(path)])
    got = np.concatenate([v[:, 0] for _, (block, v) in iter_patch_vector_batches(path, [vec], patch_rows, 4)])
    assert got.tolist() == patch_rows.tolist()


# ----------------------------------------------------------------------------- end to end
TINY_SEED = """
[tiny_meta]
base = "tiny_base"
description = "architecture 2 on tiny patches plus a metadata vector"
cnn = { architecture = "2", n_filters_3 = 0, n_filters_4 = 0, n_dense = 8 }

# tiny_base's data and training (conftest), without its architecture-1 keys, which 41 does not read
[tiny_lstm]
description = "architecture 41 on tiny word-id sequences"
dataset = { dataset = "TINY", fact = "class", dim = 3, npatches = 2, window = 1, evaluation = "multiclass" }
training = { n_epochs = 6, n_minibatch = 4, optimizer = "adam", learning_rate = 0.01, loss_func = "categorical_crossentropy", patience = 10 }
cnn = { architecture = "41", embedding_dim = 8, rnn_units = [16], embedding_trainable = false, sequence_length = 12, final_activation = "softmax" }
"""


@pytest.fixture
def seed_experiments(experiments_dir):
    (experiments_dir / "tiny_seed.toml").write_text(TINY_SEED)
    return experiments_dir


def write_metadata(layout, ds="TINY", dim=5, seed=3):
    """Per-split ``X_{set}_meta_{ds}.npy``: the item's class one-hot plus noise, in items_index order."""
    rng = np.random.default_rng(seed)
    for set_ in ("train", "val", "test"):
        classes = [int(item[1]) for item in read_lines(layout.items_index(set_, ds))]
        meta = np.zeros((len(classes), dim), np.float32)
        meta[np.arange(len(classes)), classes] = 1.0
        save_npy(layout.x(set_, "meta", ds), meta + 0.1 * rng.normal(size=meta.shape).astype(np.float32))


def test_arch2_runs_end_to_end_with_a_metadata_vector(tmp_path, seed_experiments):
    layout = write_tiny_dataset(tmp_path / "data")
    write_metadata(layout)
    exp = Registry(seed_experiments).experiment("tiny_meta")
    with pytest.raises(ConfigError, match="reads spectrogram patches and 1 vector input"):
        check_suffixes(exp, ())
    with pytest.raises(ConfigError, match="takes no input suffixes"):
        check_suffixes(Registry(seed_experiments).experiment("tiny"), ("meta",))
    train = load_split(layout, exp, "train", ("meta",))
    assert train.input_shapes == [(21, 16, 1), (5,)]
    assert isinstance(make_dataset(train, exp, shuffle=True, seed=0), PatchVectorDataset)

    result = run(exp, ("meta",), layout, verbose=0)
    assert result.epochs == 4 and np.isfinite(result.history["loss"]).all()
    test = result.results["test"]
    assert 0.0 <= test["accuracy"] <= 1.0
    pred = load_npy(layout.prediction(result.model_id, "test"))
    assert pred.shape == (3, 3) and np.allclose(pred.sum(axis=1), 1, atol=1e-5)
    saved = json.loads(layout.model_config(result.model_id).read_text())
    assert saved["suffixes"] == ["meta"] and saved["input_shapes"] == [[21, 16, 1], [5]]
    manifest = layout.manifest(result.model_id).read_text()
    assert "X_train_meta_TINY.npy" in manifest and "patches" in manifest
    predict(layout, result.model_id, ["test"], layer="concat")
    fused = load_npy(layout.x("test", f"{result.model_id}-pred_concat", "TINY"))
    flat = load_model(layout.model_file(result.model_id)).get_layer("flat").output.shape[-1]
    assert fused.shape == (3, flat + 8)

    # train items held out for validation (val_from_file = false): each part keeps its items' rows
    part, held = train.hold_out(0.25, seed=0)
    assert len(held.item_ids) == 3 and held.inputs[0].shape == (3, 5) and held.subset
    meta = load_npy(layout.x("train", "meta", "TINY"))
    feed = make_dataset(held, exp, shuffle=False, seed=0)
    rows = np.concatenate([feed[b][0][1] for b in range(len(feed))])
    assert len(rows) == 6 and {tuple(r) for r in rows} == {tuple(meta[train.item_ids.index(i)]) for i in held.item_ids}


def write_sequences(layout, ds="TINY", length=12, dim=8, seed=4):
    """Word ids per item (class c draws from words 1 + 8c .. 8 + 8c, 0 pads) and an embedding matrix."""
    rng = np.random.default_rng(seed)
    for set_ in ("train", "val", "test"):
        classes = [int(item[1]) for item in read_lines(layout.items_index(set_, ds))]
        seqs = np.stack([1 + 8 * c + rng.integers(0, 8, size=length) for c in classes]).astype(np.int32)
        seqs[:, -3:] = 0
        save_npy(layout.x(set_, "w2v", ds), seqs)
    emb = rng.normal(size=(25, dim)).astype(np.float32)
    save_npy(layout.embedding_weights("w2v", ds), emb)
    return emb


def test_arch41_runs_end_to_end_on_word_ids(tmp_path, seed_experiments):
    layout = write_tiny_dataset(tmp_path / "data")
    emb = write_sequences(layout)
    exp = Registry(seed_experiments).experiment("tiny_lstm")
    result = run(exp, ("w2v",), layout, verbose=0)
    history = result.history
    assert history["loss"][-1] < history["loss"][0]
    assert 0.0 <= result.results["test"]["accuracy"] <= 1.0
    model = load_model(layout.model_file(result.model_id))
    assert np.allclose(np.asarray(model.get_layer("embedding").embeddings), emb)  # frozen word2vec weights
    assert describe_layers(model) == "0:embedding, 1:lstm_1, 2:logits, 3:output"
    predict(layout, result.model_id, ["val", "test"], layer=1)
    assert load_npy(layout.x("test", f"{result.model_id}-pred_1", "TINY")).shape == (3, 16)
