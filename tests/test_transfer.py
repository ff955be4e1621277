"""Transfer from the released musicnn / VGG taggers (models/transfer.py) and musicnn's input through the
normal pipeline (dataset entries with ``log_scale = "musicnn"`` and ``items_from``).

The tests that build a pretrained architecture need the musicnn 0.1.0 weights (``make pretrained``)
and skip without them; converted weights go to a temporary cache, once for the module.
"""

import dataclasses
import json

import numpy as np
import pytest

from tartarus import pretrained
from tartarus.audio import features
from tartarus.config import Registry, experiment_from_dict
from tartarus.config.families import FAMILIES, PRETRAINED_IDS, PretrainedConfig, family_config
from tartarus.config.schema import DatasetEntry, build_section
from tartarus.datasets.derived import share_items
from tartarus.errors import ConfigError, MissingInput
from tartarus.layout import SETS, DataLayout
from tests.conftest import REPO, run_on_backend, write_tiny_dataset
from tests.musicnn_reference import SUPER_AUDIO, load_reference

needs_weights = pytest.mark.skipif(not pretrained.weights_installed(),
                                   reason="musicnn weights not installed: make pretrained")
needs_super = pytest.mark.skipif(not SUPER_AUDIO.is_dir(), reason=f"real SUPER audio not found at {SUPER_AUDIO}")
SHAPE = (187, 96, 1)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    """A private cache for the converted weights ($TARTARUS_CACHE), shared by the module's tests."""
    folder = tmp_path_factory.mktemp("pretrained_cache")
    patch = pytest.MonkeyPatch()
    patch.setenv(pretrained.CACHE_ENV, str(folder))
    yield folder
    patch.undo()


def build(arch, n_out=3, **cnn):
    from tartarus.models import build_model, default_cnn
    return build_model(default_cnn(arch, **cnn), [SHAPE], n_out)


def patches(n=4, seed=0):
    """Random patches in musicnn's input range (log10(10000 x + 1) of music lies in about 0..6)."""
    return np.random.default_rng(seed).uniform(0.0, 4.0, size=(n, *SHAPE)).astype("float32")


# ------------------------------------------------------------------ musicnn's input in the pipeline
def test_musicnn_log_scale_is_float16_power_then_log10_in_float32():
    power = np.array([[0.0, 1e-5, 0.3, 100.0, 174.0]], dtype=np.float32)
    out = features.musicnn_log(power)
    assert out.dtype == np.float32 and out[0, 0] == 0.0  # silence stays 0
    want = np.log10(np.float32(10000) * power.astype(np.float16).astype(np.float32) + np.float32(1))
    np.testing.assert_array_equal(out, want)
    # the float16 cast is kept: 1e-5 is not a float16 value, and the result is that of its rounding
    assert out[0, 1] != np.log10(np.float32(10000 * 1e-5 + 1))
    # computed in float32, not float16: 10000 * 100 would overflow float16 to inf
    assert np.isfinite(out).all() and abs(out[0, 4] - 6.2405) < 1e-3  # the reference input's peak, 6.24


def test_log_scale_keys_are_checked_and_recorded():
    entry = DatasetEntry(name="M", resample_sr=16000, n_fft=512, hop=256, log_scale="musicnn")
    assert features.get_plan(entry).log_scale == "musicnn"
    assert entry.spectrogram_params()["log_scale"] == "musicnn"
    assert "log_scale" not in DatasetEntry(name="D").spectrogram_params()  # folders made before still match
    assert features.silence_value(entry) == 0.0
    for bad, why in ((dict(log=False), "log = false"), (dict(spectrogram_type="cqt"), "use \"mel\""),
                     (dict(db_ref="max", top_db=80.0), "db_ref and top_db"), (dict(log_scale="ln"), "log_scale")):
        with pytest.raises(ConfigError, match=why):
            features.get_plan(dataclasses.replace(entry, **bad))
    with pytest.raises(ConfigError, match=r"log_scale.*'ln'"):  # in a dataset entry: refused when read
        build_section(DatasetEntry, {"name": "X", "log_scale": "ln"}, "dataset 'X'")


@needs_super
def test_super_musicnn_spectrogram_is_musicnn_input():
    from tartarus.audio.decode import load_audio
    entry = Registry(REPO / "experiments").dataset("SUPER_musicnn")
    assert features.n_frames(entry.window, entry) == pretrained.N_FRAMES
    path = SUPER_AUDIO / "a_vacilar.mp3"
    spec = features.spectrogram_from_file(path, entry)
    np.testing.assert_array_equal(spec, pretrained.log_mel(load_audio(path, pretrained.SR)))
    # the original package's input (float16 in the file): equal up to float16 rounding
    ref = load_reference()["input/a_vacilar"]
    ours = spec[:ref.shape[0]]
    assert ours.shape == ref.shape == (374, 96)
    step = np.spacing(np.abs(ref)).astype(np.float32)  # one float16 step at each value
    # rounded to float16, ours is the original's value or its neighbour (float32 sums in another order)
    assert np.all(np.abs(ours.astype(np.float16).astype(np.float32) - ref.astype(np.float32)) <= step)
    assert np.mean(ours.astype(np.float16) == ref) > 0.999


def test_share_items_copies_the_source_index_and_splits_under_the_new_name(tmp_path):
    layout = write_tiny_dataset(tmp_path / "data")
    (layout.index_dir).mkdir(parents=True, exist_ok=True)
    (layout.audio_index("TINY")).write_text("T000\ta.wav\n")
    entry = DatasetEntry(name="TINY_m", items_from="TINY")
    report = share_items(layout, entry)
    names = sorted(p.name for p in report.copied)
    assert names == sorted(["index_audio_TINY_m.tsv", "genre_labels_TINY_m.tsv"]
                           + [f"items_index_{s}_TINY_m.tsv" for s in SETS]
                           + [f"y_{s}_class_3_TINY_m.npy" for s in SETS])
    assert report.copied[-1].name.startswith("items_index_")  # last: they mark a complete dataset
    for set_ in SETS:
        assert layout.items_index(set_, "TINY_m").read_bytes() == layout.items_index(set_, "TINY").read_bytes()
        np.testing.assert_array_equal(np.load(layout.y(set_, "class", 3, "TINY_m")),
                                      np.load(layout.y(set_, "class", 3, "TINY")))
    again = share_items(layout, entry)
    assert again.copied == [] and len(again.unchanged) == len(names)
    np.save(layout.y("train", "als", 4, "TINY"), np.ones((12, 4), np.float32))  # new targets of the source
    assert [p.name for p in share_items(layout, entry).copied] == ["y_train_als_4_TINY_m.npy"]
    assert share_items(layout, DatasetEntry(name="TINY")) is None  # no items_from: nothing to do
    with pytest.raises(ConfigError, match="names the dataset itself"):
        share_items(layout, DatasetEntry(name="TINY", items_from="TINY"))
    with pytest.raises(MissingInput, match=r"items index of NONE, which X shares: .*items_index_train_NONE\.tsv "
                                           r"\(make it with: tartarus interactions split --dataset NONE"):
        share_items(DataLayout(tmp_path / "empty"), DatasetEntry(name="X", items_from="NONE"))


# ------------------------------------------------------------------------------- configs
def test_pretrained_architectures_read_their_own_keys_only():
    assert PRETRAINED_IDS == pretrained.PRETRAINED_NAMES
    raw = {"dataset": {"dataset": "DUMMY_musicnn", "dim": 3}}
    for arch in PRETRAINED_IDS:
        assert FAMILIES[arch] is PretrainedConfig
        exp = experiment_from_dict("x", {**raw, "cnn": {"architecture": arch, "pretrained_layer": "cnn1",
                                                        "trainable": "all", "n_dense": 8}})
        config = family_config(exp.cnn)
        assert (config.pretrained_layer, config.trainable, config.n_dense) == ("cnn1", "all", 8)
        assert PretrainedConfig.from_config(json.loads(json.dumps(config.get_config()))) == config
    with pytest.raises(ConfigError, match=r"cnn\.n_filters_1 is not read by architecture MTT_musicnn "
                                          r"\(pretrained tagger under a new head\)"):
        experiment_from_dict("x", {**raw, "cnn": {"architecture": "MTT_musicnn", "n_filters_1": 8}})
    with pytest.raises(ConfigError, match=r"cnn\.trainable is not read by architecture 1 "):
        experiment_from_dict("x", {**raw, "cnn": {"architecture": "1", "trainable": "all"}})
    with pytest.raises(ConfigError, match=r"cnn\.trainable.*'some'"):
        experiment_from_dict("x", {**raw, "cnn": {"architecture": "MTT_vgg", "trainable": "some"}})
    with pytest.raises(ConfigError, match="not read"):
        PretrainedConfig.from_config({**family_config(experiment_from_dict("x", {**raw, "cnn": {
            "architecture": "MSD_vgg"}}).cnn).get_config(), "n_filters_1": 4})


def test_pretrained_experiments_load():
    reg = Registry(REPO / "experiments")
    transfer, finetune = reg.experiment("musicnn_transfer"), reg.experiment("musicnn_finetune")
    assert (transfer.dataset.dataset, transfer.cnn.architecture, transfer.cnn.trainable) == \
        ("DUMMY_musicnn", "MTT_musicnn", "head")
    assert finetune.cnn.trainable == "all" and finetune.training.learning_rate <= 1e-4
    assert finetune.training.n_epochs <= 10
    for name in ("vgg_transfer", "musicnn_transfer_tags", "mtat_musicnn_transfer", "musicnn_transfer_als",
                 "super_musicnn_transfer"):
        exp = reg.experiment(name)
        entry = reg.dataset(exp.dataset.dataset)
        assert entry.log_scale == "musicnn" and features.n_frames(exp.dataset.window, entry) == 187, name
        assert exp.dataset.npatches == entry.npatches, name  # the patch file the entry makes
    assert reg.experiment("musicnn_transfer_als").dataset.evaluation == "recommendation"
    assert reg.experiment("musicnn_transfer_tags").dataset.evaluation == "multilabel"


# ------------------------------------------------------------------------ models (need the weights)
@needs_weights
def test_builds_only_on_musicnn_patches_and_cuts_at_embedding_layers(cache_dir):
    with pytest.raises(ConfigError, match=r"\(187, 96, 1\).*got \(96, 96, 1\).*DUMMY_musicnn, SUPER_musicnn"):
        from tartarus.models import build_model, default_cnn
        build_model(default_cnn("MTT_musicnn"), [(96, 96, 1)], 3)
    with pytest.raises(ConfigError, match=r"no layer 'taggram' to cut at.*tartarus embed MTT_musicnn"):
        build("MTT_musicnn", pretrained_layer="taggram")
    with pytest.raises(ConfigError, match=r"no layer 'pool6'.*pool1, pool2, pool3, pool4, pool5"):
        build("MTT_vgg", pretrained_layer="pool6")


@needs_weights
def test_head_freezes_the_pretrained_layers_and_all_trains_them_but_batch_norm(cache_dir):
    import keras
    cut = pretrained.feature_model(pretrained.load_pretrained("MTT_musicnn"), ["penultimate"])
    released = {layer.name for layer in cut.layers}  # the release's layers up to the cut
    head = build("MTT_musicnn", n_dense=8)
    for layer in head.layers:
        if layer.name in released and layer.name != "patches":
            assert not layer.trainable, layer.name
            assert not isinstance(layer, keras.layers.Dropout), layer.name  # Identity when frozen
    assert sorted(w.path.split("/")[0] for w in head.trainable_weights) == ["dense_1", "dense_1", "logits", "logits"]
    tuned = build("MTT_musicnn", trainable="all")
    kinds = {layer.name: layer for layer in tuned.layers if layer.name in released and layer.weights}
    assert all(layer.trainable != isinstance(layer, keras.layers.BatchNormalization) for layer in kinds.values())
    assert {"timbral_74", "mid_1", "dense"} <= {n for n, layer in kinds.items() if layer.trainable}
    assert any(isinstance(layer, keras.layers.Dropout) for layer in tuned.layers if layer.name in released)


@needs_weights
@pytest.mark.parametrize("arch, layer", [("MTT_musicnn", ""), ("MSD_musicnn", "cnn2"), ("MSD_vgg", "pool3")])
def test_cut_layer_output_equals_the_pretrained_models(cache_dir, arch, layer):
    from tartarus.models import layer_model
    model = build(arch, pretrained_layer=layer)
    name = layer or pretrained.get_spec(arch).default_layer
    x = patches()
    ours = np.asarray(layer_model(model, name).predict_on_batch(x))
    theirs = np.asarray(pretrained.feature_model(pretrained.load_pretrained(arch), [name]).predict_on_batch(x[..., 0]))
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    vector = np.asarray(layer_model(model, "head_dropout").predict_on_batch(x))
    axes = tuple(range(1, theirs.ndim - 1))
    want = theirs if theirs.ndim == 2 else np.concatenate([theirs.mean(axis=axes), theirs.max(axis=axes)], axis=1)
    np.testing.assert_allclose(vector, want, rtol=1e-5, atol=1e-5)  # sequences and maps pooled: mean, then max


BACKEND_SCRIPT = r"""
import json, sys
import keras, numpy as np
from tartarus import pretrained
from tartarus.models import build_model, default_cnn, layer_model, load_model
x = np.random.default_rng(0).uniform(0, 4, size=(4, 187, 96, 1)).astype("float32")
model = build_model(default_cnn("MTT_musicnn"), [(187, 96, 1)], 3)
ours = np.asarray(layer_model(model, "penultimate").predict_on_batch(x))
cut = pretrained.feature_model(pretrained.load_pretrained("MTT_musicnn"), ["penultimate"])
theirs = np.asarray(cut.predict_on_batch(x[..., 0]))
frozen = [np.array(w) for w in model.non_trainable_weights]
model.compile(optimizer="adam", loss="categorical_crossentropy")
model.train_on_batch(x, np.eye(3, dtype="float32")[[0, 1, 2, 0]])
moved = max(float(np.abs(a - np.array(b)).max()) for a, b in zip(frozen, model.non_trainable_weights))
out = np.asarray(model.predict_on_batch(x))
model.save(sys.argv[1] + "/m.keras")
again = np.asarray(load_model(sys.argv[1] + "/m.keras").predict_on_batch(x))
print(json.dumps({"backend": keras.backend.backend(), "cut_diff": float(np.abs(ours - theirs).max()),
                  "frozen_moved": moved, "reload_diff": float(np.abs(out - again).max()), "shape": list(out.shape)}))
"""


@needs_weights
def test_builds_trains_and_reloads_on_jax(cache_dir, tmp_path):
    seen = run_on_backend("jax", BACKEND_SCRIPT, tmp_path, timeout=300)[-1]
    assert seen["backend"] == "jax" and seen["shape"] == [4, 3]
    assert seen["cut_diff"] < 1e-4 and seen["frozen_moved"] == 0.0 and seen["reload_diff"] < 1e-5, seen


@needs_weights
def test_musicnn_transfer_learns_the_dummy_data_and_reloads(cache_dir, tmp_path, capsys):
    from tartarus.cli import main
    from tartarus.models import layer_model, load_model
    from tartarus.pipeline import run_experiment
    root = tmp_path / "data"
    for args in (["dummy-data"], ["spectrograms", "DUMMY_musicnn", "-j", "1"], ["patches", "DUMMY_musicnn"]):
        assert main([*args, "--data-dir", str(root)]) == 0
    layout = DataLayout(root)
    assert layout.items_index("test", "DUMMY_musicnn").read_text() == layout.items_index("test", "DUMMY").read_text()
    exp = Registry(REPO / "experiments").experiment("musicnn_transfer",
                                                    ["training.n_epochs=3", "training.n_minibatch=16"])
    result = run_experiment(exp, (), layout, verbose=0)
    accuracy = result.results["test"]["accuracy"]
    assert accuracy > 0.5, result.results  # 3 balanced classes: chance is 1/3

    # reloaded in safe mode (no custom objects), it predicts what the pipeline wrote: the mean of each
    # test item's six patches
    model = load_model(layout.model_file(result.model_id))
    import h5py
    with h5py.File(layout.patches("test", "DUMMY_musicnn", 6, 3.0), "r") as f:
        x = np.asarray(f["features"][:], dtype="float32")
        ids = [i.decode() if isinstance(i, bytes) else str(i) for i in f["index"][:]]
    x = x if x.ndim == 4 else x[..., None]
    out = np.asarray(model.predict(x, batch_size=16, verbose=0))
    written = np.load(layout.prediction(result.model_id, "test"))
    order = layout.prediction_index(result.model_id, "test").read_text().split()
    per_item = np.stack([out[[k for k, i in enumerate(ids) if i == item]].mean(axis=0) for item in order])
    np.testing.assert_allclose(per_item, written, atol=1e-5)
    assert np.ptp(written, axis=0).max() > 0.1  # the items get different outputs
    # the frozen front end is still the release's after training
    theirs = pretrained.feature_model(pretrained.load_pretrained("MTT_musicnn"), ["penultimate"])
    np.testing.assert_allclose(np.asarray(layer_model(model, "penultimate").predict_on_batch(x)),
                               np.asarray(theirs.predict_on_batch(x[..., 0])), atol=1e-5)
    assert main(["predict", result.model_id, "-l", "penultimate", "--data-dir", str(root)]) == 0
    rows, index = layout.predictions_of(result.model_id, "test", "DUMMY_musicnn", layer="penultimate")
    assert np.load(rows).shape == (12, 200)


def test_without_the_weights_the_architecture_is_listed_not_built(monkeypatch):
    from tartarus.models import build_model, default_cnn
    from tartarus.models.catalog import describe_architectures, format_architectures

    def absent():
        raise MissingInput("the musicnn package (pretrained weights)", pretrained.INSTALL_HINT)
    monkeypatch.setattr(pretrained, "package_dir", absent)
    with pytest.raises(MissingInput, match="make pretrained"):
        build_model(default_cnn("MSD_vgg"), [SHAPE], 3)
    infos = describe_architectures(["MSD_vgg", "1"])
    assert [i.id for i in infos] == ["MSD_vgg", "1"]
    assert infos[0].layers == [] and "make pretrained" in infos[0].note and infos[1].n_params > 0
    text = format_architectures(infos)
    assert "not built: missing input: the musicnn package" in text and "8:flat" in text


@needs_weights
def test_architectures_command_lists_a_pretrained_model(cache_dir, capsys):
    from tartarus.cli import main
    assert main(["architectures", "MTT_musicnn"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("MTT_musicnn "))
    assert "musicnn pretrained on MagnaTagATune" in row and "187x96x1" in row
    assert ":penultimate" in out and ":cnn3" in out and ":logits" in out
