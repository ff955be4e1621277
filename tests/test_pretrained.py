"""Pretrained musicnn / VGG taggers: the same taggrams as the original package, on every backend.

Needs the musicnn 0.1.0 weights (``make pretrained``) and the real SUPER songs (../shared/super).
"""

import json

import numpy as np
import pytest

from tartarus import pretrained
from tartarus.errors import AudioError, ConfigError, MissingInput
from tests.conftest import run_on_backend
from tests.musicnn_reference import SUPER_AUDIO, compare, load_reference

needs_weights = pytest.mark.skipif(not pretrained.weights_installed(),
                                   reason="musicnn weights not installed: make pretrained")
needs_super = pytest.mark.skipif(not SUPER_AUDIO.is_dir(), reason=f"real SUPER audio not found at {SUPER_AUDIO}")

# one song per genre for the backends run in a subprocess (all nine on TensorFlow)
FEW_SONGS = ("a_vacilar", "berlina", "canariedad")
TOLERANCE = 1e-3  # the bound on the mean absolute taggram difference


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("pretrained_cache")


def check(report, names):
    for name in names:
        r = report[name]
        assert r["labels_equal"], name
        assert r["mean_abs_diff"] < TOLERANCE, (report["backend"], name, r)
        assert r["top5_differs"] == [], (report["backend"], name, r)
        assert r["feature_max_diff"] < 1e-2, (report["backend"], name, r)


@needs_weights
@needs_super
def test_taggrams_equal_the_original_on_tensorflow(cache_dir):
    report = compare(pretrained.PRETRAINED_NAMES, cache_dir=cache_dir)
    check(report, pretrained.PRETRAINED_NAMES)
    # far inside the bound: the graphs and the input are the release's, not approximations
    assert max(report[n]["mean_abs_diff"] for n in pretrained.PRETRAINED_NAMES) < 1e-5


SCRIPT = r"""
import json, sys
from tests.musicnn_reference import compare
print(json.dumps(compare(sys.argv[1].split(","), sys.argv[2].split(","), sys.argv[3])))
"""


@needs_weights
@needs_super
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_taggrams_equal_the_original_on_other_backends(cache_dir, backend):
    names = pretrained.PRETRAINED_NAMES
    report = run_on_backend(backend, SCRIPT, ",".join(names), ",".join(FEW_SONGS), cache_dir, timeout=600)[-1]
    assert report["backend"] == backend
    check(report, names)


@needs_weights
def test_weights_are_converted_once_into_the_cache(tmp_path):
    first = pretrained.weights_file("MTT_vgg", tmp_path)
    assert first.parent == tmp_path / "pretrained" and first.name.startswith("MTT_vgg-")
    assert first.name.endswith(".weights.h5")
    stamp = first.stat().st_mtime_ns
    assert pretrained.weights_file("MTT_vgg", tmp_path) == first and first.stat().st_mtime_ns == stamp
    assert [p.name for p in (tmp_path / "pretrained").iterdir()] == [first.name]  # no temporary left


@needs_weights
def test_every_checkpoint_variable_lands_in_a_layer():
    import keras
    for name in pretrained.PRETRAINED_NAMES:
        spec = pretrained.get_spec(name)
        variables = pretrained.read_checkpoint(pretrained.checkpoint_prefix(name))
        model = pretrained.build_net(spec)
        n_weights = sum(np.prod(w.shape) for w in model.weights)
        assert n_weights == sum(v.size for v in variables.values()), name
        assert len(model.weights) == len(variables), name
        assert model.output.shape[1:] == (50,) and isinstance(model, keras.Model)
        assert set(spec.layers) <= {layer.name for layer in model.layers}


def test_input_is_musicnns_log_mel():
    ref = load_reference()
    song = str(ref["songs"][0])
    expected = ref[f"input/{song}"].astype(np.float32)  # float16, as the original computes it
    if not SUPER_AUDIO.is_dir():
        pytest.skip(f"real SUPER audio not found at {SUPER_AUDIO}")
    from tartarus.audio.decode import load_audio
    y = load_audio(SUPER_AUDIO / f"{song}.mp3", pretrained.SR)
    ours = pretrained.log_mel(y)
    assert ours.dtype == np.float32 and ours.shape == (1 + len(y) // pretrained.HOP, 96)
    # the original stores float16: at most half a float16 step apart (values up to ~6.3)
    np.testing.assert_allclose(ours[: len(expected)], expected, atol=2.0 ** -9 * 4, rtol=0)


def test_compress_is_float16_then_log10_in_float32():
    from tartarus.audio.features import musicnn_log
    power = np.array([[0.0, 1e-4, 1.0, 7.0, 5000.0]], np.float32)
    out = musicnn_log(power)
    x16 = power.astype(np.float16).astype(np.float64)
    np.testing.assert_allclose(out, np.log10(10000 * x16 + 1), rtol=1e-6)
    assert out.dtype == np.float32 and np.isfinite(out).all()  # 10000 * 5000 overflows float16; not here
    assert out[0, 0] == 0.0


def test_cut_patches_counts_and_order():
    spec = np.arange(400 * 2, dtype=np.float32).reshape(400, 2)
    p = pretrained.cut_patches(spec)
    assert p.shape == (2, 187, 2)  # 400 frames: two whole patches, the last 26 frames left out
    np.testing.assert_array_equal(p[1], spec[187:374])
    assert pretrained.cut_patches(spec, step=100).shape == (3, 187, 2)  # starts 0, 100, 200
    assert pretrained.cut_patches(spec[:186]).shape == (0, 187, 2)


def test_short_and_corrupt_files_are_audio_errors(tmp_path):
    import soundfile as sf
    short = tmp_path / "short.wav"
    sf.write(short, np.zeros(16000 * 2, np.float32), 16000)  # 2 s < 3 s
    with pytest.raises(AudioError, match=r"short\.wav: .*shorter than one 187-frame patch"):
        pretrained.file_patches(short)
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(b"not audio at all" * 100)
    with pytest.raises(AudioError, match="bad.mp3"):
        pretrained.file_patches(bad)
    ok = tmp_path / "ok.wav"
    sf.write(ok, np.random.default_rng(0).normal(0, 0.1, 44100 * 7).astype(np.float32), 44100)
    assert pretrained.file_patches(ok).shape == (2, 187, 96)  # 7 s at 16 kHz: 438 frames


def test_unknown_name_and_missing_package(monkeypatch):
    with pytest.raises(ConfigError, match="unknown pretrained model 'MTT_musicnn_big'.*MTT_musicnn, MSD_musicnn"):
        pretrained.get_spec("MTT_musicnn_big")
    monkeypatch.setattr(pretrained.importlib.util, "find_spec", lambda name: None)
    assert not pretrained.weights_installed()
    with pytest.raises(MissingInput, match=r"musicnn package.*make pretrained"):
        pretrained.load_pretrained("MTT_musicnn")


def test_default_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(pretrained.CACHE_ENV, str(tmp_path))
    assert pretrained.default_cache_dir() == tmp_path
    monkeypatch.delenv(pretrained.CACHE_ENV)
    assert pretrained.default_cache_dir().parts[-2:] == (".cache", "tartarus")
