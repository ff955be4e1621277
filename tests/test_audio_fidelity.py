"""The seed's audio front end: its patch files, its dB scaling, its per-bin scaler, full-track prediction."""

import json
import shutil

import h5py
import keras
import numpy as np
import pytest

from tartarus import fileio
from tartarus.audio import features
from tartarus.cli import main
from tartarus.config import Registry
from tartarus.config.schema import DatasetEntry
from tartarus.errors import ConfigError, DataMismatch
from tartarus.inputs import PatchDataset, feature_layout, feature_stats, iter_patch_batches, patch_shape
from tartarus.layout import SETS, DataLayout
from tartarus.models.layers import Standardize
from tartarus.predict import predict, track_patches
from tartarus.pipeline import run_experiment as run  # train -> predict -> evaluate
from tests.conftest import run_on_backend

SR = 22050


def _layer(model_id, layout):
    model = keras.saving.load_model(layout.model_file(model_id), safe_mode=True)
    return model, model.get_layer("standardize")


# ----------------------------------------------------------------- patch files made by the seed
def _seed_layout(layout, ds="TINY", npatches=2, window=1):
    """Rewrite the tiny dataset's patch files as the seed's create_patches.py leaves them: features
    (N, 1, frames, bins), standardised per (frame, bin) by a scaler fitted on the train patches,
    index as fixed-length bytes, no params attribute. Returns {set: channels-last standardised}."""
    from sklearn.preprocessing import StandardScaler
    raw = {}
    for set_ in SETS:
        with h5py.File(layout.patches(set_, ds, npatches, window), "r") as f:
            raw[set_] = (f["features"][:], f["index"][:])
    n, frames, bins, _ = raw["train"][0].shape
    scaler = StandardScaler().fit(raw["train"][0].reshape(n, -1))
    out = {}
    for set_, (x, index) in raw.items():
        scaled = scaler.transform(x.reshape(len(x), -1)).reshape(x.shape).astype(np.float32)
        out[set_] = scaled
        path = layout.patches(set_, ds, npatches, window)
        path.unlink()
        with h5py.File(path, "w") as f:
            f.create_dataset("features", data=np.moveaxis(scaled, -1, 1))  # (N, 1, frames, bins)
            f.create_dataset("index", data=np.array(list(index), dtype="S18"))
    return out


def test_seed_layout_patch_file_is_read_channels_last_and_scaled_once(tiny_layout, experiments_dir):
    expected = _seed_layout(tiny_layout)
    path = tiny_layout.patches("train", "TINY", 2, 1)
    with h5py.File(path, "r") as f:
        assert f["features"].shape == (24, 1, 21, 16)
    assert feature_layout(path).channels_first and feature_layout(path).prescaled
    assert patch_shape(path) == (21, 16, 1)
    blocks = np.concatenate([b for _, b in iter_patch_batches(path, 5)])
    np.testing.assert_array_equal(blocks, expected["train"])
    ids = fileio.read_lines(tiny_layout.items_index("train", "TINY"))
    y = fileio.load_npy(tiny_layout.y("train", "class", 3, "TINY"))
    for in_memory in (True, False):
        feed = PatchDataset(path, y, ids, batch_size=4, shuffle=False, in_memory=in_memory)
        np.testing.assert_array_equal(feed[0][0], expected["train"][:4])
    # the seed's scaling is kept: no second scaling, whatever dataset.scaling says
    assert feature_stats(path) == (0.0, 1.0) and feature_stats(path, "per_bin") == (0.0, 1.0)
    exp = Registry(experiments_dir).experiment("tiny", ["training.n_epochs=1", "dataset.scaling=per_bin"])
    result = run(exp, (), tiny_layout, verbose=0, evaluate=False)
    _, layer = _layer(result.model_id, tiny_layout)
    assert (layer.mean, layer.std) == (0.0, 1.0)
    saved = json.loads(tiny_layout.model_config(result.model_id).read_text())
    assert saved["input_prescaled"] is True and saved["input_stats"] == [0.0, 1.0]
    (_, out, _, res), = predict(tiny_layout, result.model_id, ["test"])
    assert res.values.shape == (3, 3) and np.allclose(res.values.sum(axis=1), 1, atol=1e-5)
    # whole tracks cannot be scaled like the seed's patches: refused, not guessed
    with pytest.raises(DataMismatch, match="already\\s+standardised"):
        predict(tiny_layout, result.model_id, ["test"], full_track=True)


def test_seed_layout_that_is_not_standardised_or_unknown_is_refused(tmp_path):
    path = tmp_path / "p.hdf5"
    with h5py.File(path, "w") as f:
        f.create_dataset("features", data=np.full((4, 1, 8, 5), -40.0, np.float32))
        f.create_dataset("index", data=np.array([b"a", b"b", b"c", b"d"]))
    with pytest.raises(DataMismatch, match="standardised"):
        feature_stats(path)
    with h5py.File(path, "w") as f:
        f.create_dataset("features", data=np.zeros((4, 2, 8, 5), np.float32))
    with pytest.raises(DataMismatch, match=r"\(N, 1, frames, bins\)"):
        patch_shape(path)


# ---------------------------------------------------------------------------- dB as the seed
def _signal():
    t = np.arange(int(SR * 2.5)) / SR
    y = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.01 * np.random.default_rng(0).normal(size=t.size)
    y[: SR // 2] = 0  # silence: the top_db floor matters
    return y.astype(np.float32)


@pytest.mark.parametrize("kind", ["cqt", "mel"])
@pytest.mark.parametrize("db_ref,top_db,lib_ref,lib_top", [("max", 80.0, np.max, 80.0), ("1.0", 0.0, 1.0, None),
                                                           ("2.5", 50.0, 2.5, 50.0), ("max", 0.0, np.max, None)])
def test_db_ref_and_top_db_match_librosa(kind, db_ref, top_db, lib_ref, lib_top):
    import librosa
    y = _signal()
    e = DatasetEntry(name="X", spectrogram_type=kind, db_ref=db_ref, top_db=top_db)
    ours = features.spectrogram(y, e)
    if kind == "cqt":
        power = np.abs(librosa.cqt(y, sr=SR, hop_length=1024, n_bins=96)) ** 2
    else:
        power = librosa.feature.melspectrogram(y=y, sr=SR, hop_length=1024, n_fft=2048, n_mels=96)
    ref = librosa.power_to_db(power, ref=lib_ref, amin=1e-10, top_db=lib_top).T
    assert ours.shape == ref.shape
    loud = ref > ref.max() - 70  # below that, float32 rounding of the FFT shows (see test_audio)
    assert np.abs(ours - ref)[loud].max() < 0.05 and np.median(np.abs(ours - ref)) < 0.01
    # the dB step alone, on our own power: librosa's power_to_db to float32 rounding
    power = features.spectrogram(y, DatasetEntry(name="X", spectrogram_type=kind, log=False))
    exact = librosa.power_to_db(power.astype(np.float64), ref=lib_ref, amin=1e-10, top_db=lib_top)
    np.testing.assert_allclose(ours, exact, atol=2e-3)
    if db_ref == "max":
        assert ours.max() == 0.0
    if top_db:
        assert ours.min() == pytest.approx(ours.max() - top_db)


def test_db_settings_are_stored_and_checked():
    assert "db_ref" not in DatasetEntry(name="X").spectrogram_params()  # old folders still match
    e = DatasetEntry(name="X", db_ref="max", top_db=80.0)
    assert e.spectrogram_params()["db_ref"] == "max" and e.spectrogram_params()["top_db"] == 80.0
    assert features.silence_value(e) == -80.0
    with pytest.raises(ConfigError, match="db_ref"):
        DatasetEntry(name="X", db_ref="loud").db_reference()
    with pytest.raises(ConfigError, match="top_db"):
        DatasetEntry(name="X", top_db=-3.0).db_reference()
    with pytest.raises(ConfigError, match="log = false"):
        features.get_plan(DatasetEntry(name="X", log=False, db_ref="max"))
    reg = Registry()
    for ds in ("SUPER", "MSD-I"):  # the seed's CQT datasets: power_to_db(|C|^2, ref=np.max), top_db 80
        entry = reg.dataset(ds)
        assert (entry.spectrogram_type, entry.db_reference(), entry.top_db) == ("cqt", "max", 80.0)
    assert reg.dataset("DUMMY").db_reference() == 1.0 and reg.dataset("DUMMY").top_db == 0.0


def test_audio_ext_limits_the_decoded_files(tmp_path):
    import soundfile as sf
    from tartarus.audio.runner import compute_spectrograms
    layout = DataLayout(tmp_path)
    (tmp_path / "audio").mkdir()
    for name in ("a.wav", "b.flac"):
        sf.write(tmp_path / "audio" / name, _signal()[:SR], SR)
    layout.index_dir.mkdir(parents=True, exist_ok=True)
    layout.audio_index("X").write_text("a\ta.wav\nb\tb.flac\n")
    report = compute_spectrograms(layout, DatasetEntry(name="X", audio_ext=("wav",)), progress=False)
    assert report.done == 1 and [row[0] for row in report.failed] == ["b"]
    assert "audio_ext" in report.failed[0][2]
    report = compute_spectrograms(layout, DatasetEntry(name="X"), progress=False)  # () = any extension
    assert report.done == 1 and report.skipped == 1 and not report.failed


# ------------------------------------------------------------------- per-(frame, bin) scaling
def test_per_bin_scaling_matches_standard_scaler(tmp_path):
    from sklearn.preprocessing import StandardScaler
    rng = np.random.default_rng(3)
    x = rng.normal(-40, 5, size=(30, 6, 4, 1)).astype(np.float32) + np.arange(4, dtype=np.float32)[:, None]
    x[:, 2, 1, 0] = -7.0  # a constant (frame, bin): scale 1, as scikit-learn
    path = tmp_path / "p.hdf5"
    with h5py.File(path, "w") as f:
        f.create_dataset("features", data=x)
        f.create_dataset("index", data=np.array([str(i) for i in range(30)], dtype=object),
                         dtype=h5py.string_dtype())
    scaler = StandardScaler().fit(x[:20].reshape(20, -1))  # the seed fits on the first block only
    mean, std = feature_stats(path, "per_bin", chunk=7, max_patches=20)
    assert mean.shape == std.shape == (6, 4, 1)
    np.testing.assert_allclose(mean.ravel(), scaler.mean_, rtol=1e-6)
    np.testing.assert_allclose(std.ravel(), scaler.scale_, rtol=1e-5)
    assert std[2, 1, 0] == 1.0
    inp = keras.Input((6, 4, 1))
    model = keras.Model(inp, Standardize(mean, std)(inp))
    np.testing.assert_allclose(np.asarray(model(x)).reshape(30, -1), scaler.transform(x.reshape(30, -1)),
                               rtol=1e-4, atol=1e-4)
    scalar = feature_stats(path)
    assert scalar == pytest.approx((x.astype(np.float64).mean(), x.astype(np.float64).std()))


def test_per_bin_scaling_is_saved_with_the_model(tiny_layout, experiments_dir):
    exp = Registry(experiments_dir).experiment("tiny", ["training.n_epochs=1", "dataset.scaling=per_bin"])
    result = run(exp, (), tiny_layout, verbose=0, evaluate=False)
    mean, std = feature_stats(tiny_layout.patches("train", "TINY", 2, 1), "per_bin")
    model, layer = _layer(result.model_id, tiny_layout)
    np.testing.assert_allclose(np.asarray(layer.mean), mean, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(layer.std), std, rtol=1e-6)
    assert not model.get_layer("standardize").trainable_weights
    saved = json.loads(tiny_layout.model_config(result.model_id).read_text())
    assert saved["input_stats"] == {"scaling": "per_bin", "shape": [21, 16, 1]}
    with pytest.raises(ConfigError, match="scaling"):
        Registry(experiments_dir).experiment("tiny", ["dataset.scaling=whiten"])


# ----------------------------------------------------------------------- full-track prediction
def test_track_patches_by_hand():
    spec = np.arange(100 * 2, dtype=np.float32).reshape(100, 2)
    p = track_patches(spec, 20, 0.15)  # 15 frames cut each end, 70 left, hop 10: starts 15, 25, ... 65
    assert p.shape == (6, 20, 2) and [int(q[0, 0]) // 2 for q in p] == [15, 25, 35, 45, 55, 65]
    assert [int(q[0, 0]) // 2 for q in track_patches(spec, 20, 0.15, middle=True)] == [45]
    assert len(track_patches(spec, 20, 0.0)) == 9 and len(track_patches(spec, 80, 0.15)) == 0
    with pytest.raises(ConfigError, match="trim_coeff"):
        track_patches(spec, 20, 0.5)


SUPER_TINY = """
[super_tiny]
dataset = { dataset = "SUPER", fact = "class", dim = 3, npatches = 1, window = 5, evaluation = "multiclass" }
training = { n_epochs = 1, n_minibatch = 3, optimizer = "adam", loss_func = "categorical_crossentropy" }
cnn = { architecture = "1", n_filters_1 = 4, n_filters_2 = 4, n_kernel_1 = [4, 96], n_kernel_2 = [4, 1], n_pool_1 = [4, 1], n_pool_2 = [4, 1], final_activation = "softmax" }
"""


def test_full_track_prediction_on_super_songs(super_root, experiments_dir, capsys):
    from tartarus.audio.decode import load_audio
    from tartarus.predict import load_trained
    (experiments_dir / "super_tiny.toml").write_text(SUPER_TINY)
    root, layout = str(super_root), DataLayout(super_root)
    args = ["--data-dir", root, "--experiments", str(experiments_dir)]
    assert main(["spectrograms", "SUPER", *args]) == 0
    assert main(["patches", "SUPER", "--window", "5", *args]) == 0
    assert main(["run", "super_tiny", "--no-eval", *args]) == 0
    assert main(["predict", "model_1", "--full-track", *args]) == 0
    assert "patches of whole tracks" in capsys.readouterr().out
    model, experiment, _ = load_trained(layout, "model_1")
    frames = features.n_frames(5, Registry(experiments_dir).dataset("SUPER"))  # 107; hop 53
    ids = fileio.read_lines(layout.items_index("test", "SUPER"))
    audio = dict(fileio.read_tsv(layout.audio_index("SUPER"), ncols=2))
    expected = []
    for item in ids:
        spec = np.load(layout.spectrogram("SUPER", item))
        samples = len(load_audio(super_root / "audio" / audio[item], SR))
        assert spec.shape[0] == 1 + samples // 1024  # frames of the track's duration
        trimmed = spec.shape[0] - 2 * int(spec.shape[0] * 0.15)
        n = 1 + (trimmed - frames) // (frames // 2)
        patches = track_patches(spec, frames, 0.15)
        assert len(patches) == n and n == 7  # 30 s songs: 648 frames, 454 after trimming
        out = np.asarray(model.predict_on_batch(patches[..., None]))
        expected.append(out.mean(axis=0))
    values = fileio.load_npy(layout.prediction("model_1", "test"))
    assert fileio.read_lines(layout.prediction_index("model_1", "test")) == ids
    np.testing.assert_allclose(values, np.array(expected), rtol=1e-5, atol=1e-6)
    (_, _, _, res), = predict(layout, "model_1", ["test"], full_track=True, trim_coeff=0.0)
    assert res.patch_counts == [1 + (648 - frames) // 53] * 3
    (_, _, _, res), = predict(layout, "model_1", ["test"], full_track=True, middle=True)
    assert res.patch_counts == [1, 1, 1]
    middle = track_patches(np.load(layout.spectrogram("SUPER", ids[0])), frames, 0.15)[3]
    np.testing.assert_allclose(res.values[0], np.asarray(model.predict_on_batch(middle[None, ..., None]))[0],
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(ConfigError, match="full-track"):
        predict(layout, "model_1", ["test"], trim_coeff=0.1)
    # a new audio file is cut and scaled like the training patches, db_ref and top_db included
    from tartarus.recommend import audio_vector
    (_, _, _, items), = predict(layout, "model_1", ["test"], layer="flat")
    outside = super_root / "elsewhere" / f"{ids[0]}.mp3"  # same stem: the same random crop
    outside.parent.mkdir()
    shutil.copy(super_root / "audio" / audio[ids[0]], outside)
    np.testing.assert_allclose(audio_vector(layout, "model_1", outside, layer="flat"), items.values[0],
                               rtol=1e-4, atol=1e-5)


def test_predict_on_another_dataset(tiny_layout, experiments_dir):
    exp = Registry(experiments_dir).experiment("tiny", ["training.n_epochs=1"])
    model_id = run(exp, (), tiny_layout, verbose=0, evaluate=False).model_id
    # a copy of TINY's test split under another name: the same predictions, in their own files
    lay = tiny_layout
    shutil.copy(lay.patches("test", "TINY", 2, 1), lay.patches("test", "COPY", 2, 1))
    shutil.copy(lay.items_index("test", "TINY"), lay.items_index("test", "COPY"))
    (_, own, _, a), = predict(lay, model_id, ["test"])
    assert main(["predict", model_id, "-pd", "COPY", "--data-dir", str(lay.root)]) == 0
    other = lay.prediction(model_id, "test", "COPY")
    assert other.name == f"pred_{model_id}_test_COPY.npy" and other != own
    np.testing.assert_allclose(fileio.load_npy(other), a.values, rtol=1e-6)
    assert fileio.read_lines(lay.prediction_index(model_id, "test", "COPY")) == a.item_ids



def test_predict_refuses_patches_of_another_shape(tiny_layout, experiments_dir):
    exp = Registry(experiments_dir).experiment("tiny", ["training.n_epochs=1"])
    model_id = run(exp, (), tiny_layout, verbose=0, evaluate=False).model_id
    lay = tiny_layout
    with h5py.File(lay.patches("test", "TINY", 2, 1), "r") as f:
        features, index, attrs = f["features"][:], f["index"][:], dict(f.attrs)
    with h5py.File(lay.patches("test", "SHORT", 2, 1), "w") as f:  # 5 frames fewer than the model takes
        f.create_dataset("features", data=features[:, :-5])
        f.create_dataset("index", data=index)
        f.attrs.update(attrs)
    shutil.copy(lay.items_index("test", "TINY"), lay.items_index("test", "SHORT"))
    with pytest.raises(DataMismatch, match=r"expects shape \(21, 16, 1\).*give \(16, 16, 1\)"):
        predict(lay, model_id, ["test"], dataset="SHORT")

PER_BIN_ROUND_TRIP = r"""
import json, os, sys, tempfile
import keras, numpy as np
from tartarus.models.layers import Standardize
rng = np.random.default_rng(0)
mean, std = rng.normal(size=(5, 4, 1)).astype("float32"), rng.uniform(1, 2, size=(5, 4, 1)).astype("float32")
inp = keras.Input((5, 4, 1))
model = keras.Model(inp, keras.layers.Flatten()(Standardize(mean, std, name="standardize")(inp)))
x = rng.normal(size=(3, 5, 4, 1)).astype("float32")
path = os.path.join(tempfile.mkdtemp(), "m.keras")
model.save(path)
again = keras.saving.load_model(path, safe_mode=True)
err = float(np.abs(np.asarray(again.predict(x, verbose=0)) - ((x - mean) / std).reshape(3, -1)).max())
print(json.dumps({"err": err, "trainable": len(again.trainable_weights)}))
"""


def test_per_bin_standardize_saves_and_loads_on_torch():
    # weights created in __init__ and assigned there: the backend most unlike TF here (JAX checked by hand)
    (out,) = run_on_backend("torch", PER_BIN_ROUND_TRIP)
    assert out["err"] < 1e-5 and out["trainable"] == 0
