"""Audio preprocessing: decoding, spectrograms, the spectrogram runner and patch files."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest
import soundfile as sf

from tartarus import fileio
from tartarus.audio import decode, features, patches, runner
from tartarus.config.schema import DatasetEntry
from tartarus.errors import AudioError, ConfigError, DataMismatch, MissingInput
from tartarus.layout import DataLayout

SR = 22050
SHARED_SUPER = Path(__file__).resolve().parents[1].parent / "shared" / "super"


def tone(freq=440.0, seconds=2.0, sr=SR, channels=1, amp=0.5, seed=0):
    """A sine with a little noise, (frames,) or (frames, channels) float32."""
    t = np.arange(int(seconds * sr)) / sr
    y = amp * np.sin(2 * np.pi * freq * t) + 0.01 * np.random.default_rng(seed).standard_normal(t.size)
    y = y.astype(np.float32)
    return y if channels == 1 else np.stack([y] * channels, axis=1)


def write_wav(path, y, sr=SR):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, y, sr, format="WAV", subtype="PCM_16")  # whatever the extension says
    return path


def entry(kind="mel", **kw):
    return DatasetEntry(name="T", spectrogram_type=kind, **kw)


# ------------------------------------------------------------------------------- features
@pytest.mark.parametrize("kind,bins", [("mel", 96), ("cqt", 84), ("stft", 1025)])
def test_spectrogram_shape_dtype(kind, bins):
    e = entry(kind, cqt_bins=84)
    y = tone(seconds=2.0)
    s = features.spectrogram(y, e)
    assert s.dtype == np.float32
    assert s.shape == (1 + y.size // e.hop, bins)
    assert s.flags.c_contiguous
    assert np.isfinite(s).all()
    assert s.min() >= features.SILENCE_DB - 1e-3


@pytest.mark.parametrize("kind,extra", [("mel", {}), ("stft", {}), ("cqt", {}),
                                        ("cqt", {"cqt_bins": 48, "hop": 512})])  # early downsampling
def test_spectrogram_matches_librosa(kind, extra):
    librosa = pytest.importorskip("librosa")
    e = entry(kind, **extra)
    y = tone(220.0, seconds=3.0) + tone(1760.0, seconds=3.0, amp=0.1, seed=1)
    ours = features.spectrogram(y, e)
    if kind == "mel":
        power = librosa.feature.melspectrogram(y=y, sr=SR, n_fft=e.n_fft, hop_length=e.hop, n_mels=e.n_mels)
    elif kind == "stft":
        power = np.abs(librosa.stft(y, n_fft=e.n_fft, hop_length=e.hop)) ** 2
    else:
        power = np.abs(librosa.cqt(y, sr=SR, hop_length=e.hop, fmin=e.fmin, n_bins=e.cqt_bins,
                                   bins_per_octave=e.bins_per_octave)) ** 2
    ref = librosa.power_to_db(power, ref=1.0, amin=1e-10, top_db=None).T
    assert ours.shape == ref.shape
    loud = ref > ref.max() - 80  # below that, float32 rounding of the FFT shows
    assert np.abs(ours - ref)[loud].max() < 0.05
    assert np.median(np.abs(ours - ref)) < 0.01


def test_silence_and_linear():
    e = entry("mel")
    s = features.spectrogram(np.zeros(SR, np.float32), e)
    assert np.all(s == np.float32(features.SILENCE_DB))
    assert features.SILENCE_DB == pytest.approx(-100.0)
    assert features.silence_value(e) == features.SILENCE_DB
    lin = entry("mel", log=False)
    assert features.silence_value(lin) == 0.0
    assert np.all(features.spectrogram(np.zeros(SR, np.float32), lin) == 0.0)
    y = tone()
    np.testing.assert_allclose(10 * np.log10(np.maximum(features.spectrogram(y, lin), 1e-10)),
                               features.spectrogram(y, e), atol=1e-3)


def test_n_frames():
    assert features.n_frames(15, entry()) == 322
    assert features.n_frames(1.0, entry()) == 21
    assert features.n_frames(15, entry(resample_sr=16000, hop=512)) == 468


def test_plan_cached_per_parameters():
    a, b = features.get_plan(entry("mel")), features.get_plan(entry("mel", description="other"))
    assert a is b
    assert features.get_plan(entry("mel", n_mels=40)) is not a
    assert features.get_plan(entry("mel", n_mels=40)).mel_t.shape == (1025, 40)


def test_resampled_sine_peaks_at_right_bin(tmp_path):
    librosa = pytest.importorskip("librosa")
    path = write_wav(tmp_path / "a.wav", tone(1000.0, seconds=2.0, sr=44100, channels=2), sr=44100)
    y = decode.load_audio(path, SR)
    assert y.dtype == np.float32 and y.ndim == 1
    assert y.size == 44100  # ceil(88200 * 22050 / 44100)
    stft = features.spectrogram(y, entry("stft"))
    assert int(np.argmax(stft.mean(axis=0))) == round(1000 * 2048 / SR)  # bin 93
    mel = features.spectrogram(y, entry("mel"))
    centres = librosa.mel_frequencies(n_mels=96 + 2, fmin=0.0, fmax=SR / 2)[1:-1]
    assert abs(int(np.argmax(mel.mean(axis=0))) - int(np.argmin(np.abs(centres - 1000)))) <= 1


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # librosa.load imports audioread's aifc
@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "FLOAT"])
def test_load_audio_matches_librosa_load(tmp_path, subtype):
    librosa = pytest.importorskip("librosa")
    path = tmp_path / "s.wav"
    sf.write(path, np.stack([tone(300, sr=44100), tone(500, sr=44100, seed=3)], 1), 44100, subtype=subtype)
    ref, _ = librosa.load(path, sr=SR)
    np.testing.assert_array_equal(decode.load_audio(path, SR), ref)
    mono = tmp_path / "m.wav"
    sf.write(mono, tone(300, sr=SR), SR, subtype=subtype)
    np.testing.assert_array_equal(decode.load_audio(mono, SR), librosa.load(mono, sr=SR)[0])


def test_load_audio_rejects_nan(tmp_path):
    y = tone()
    y[100] = np.nan
    sf.write(tmp_path / "nan.wav", y, SR, subtype="FLOAT")
    with pytest.raises(AudioError, match="not finite"):
        decode.load_audio(tmp_path / "nan.wav", SR)


def _bad_files(folder):
    """A zero-byte, a truncated and a garbage file; returns {name: reason word}."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.wav").write_bytes(b"")
    good = write_wav(folder / "_full.wav", tone(seconds=2.0)).read_bytes()
    (folder / "_full.wav").unlink()
    (folder / "cut.wav").write_bytes(good[: len(good) // 2])
    (folder / "junk.mp3").write_bytes(np.random.default_rng(0).bytes(4000))
    return {"empty.wav": "empty", "cut.wav": "truncated", "junk.mp3": "cannot decode"}


def test_load_audio_errors(tmp_path):
    for name, word in _bad_files(tmp_path).items():
        with pytest.raises(AudioError, match=word) as info:
            decode.load_audio(tmp_path / name, SR)
        assert name in str(info.value)
    with pytest.raises(AudioError, match="not found"):
        decode.load_audio(tmp_path / "nothing.wav", SR)
    header_only = write_wav(tmp_path / "h.wav", np.zeros(0, np.float32))
    with pytest.raises(AudioError, match="no audio"):
        decode.load_audio(header_only, SR)


# --------------------------------------------------------------------------------- runner
def make_dataset(root, n_good=3, bad=True, seconds=2.0):
    """An audio folder and index under ``root``: good tones G0.., and the bad files B*."""
    audio = root / "audio"
    rows = []
    for i in range(n_good):
        write_wav(audio / f"g{i}.wav", tone(200.0 * (i + 1), seconds=seconds, sr=44100, seed=i), sr=44100)
        rows.append((f"G{i}", f"g{i}.wav"))
    if bad:
        for j, name in enumerate(_bad_files(audio)):
            rows.append((f"B{j}", name))
    fileio.write_tsv(DataLayout(root).audio_index("T"), rows)
    return DataLayout(root), rows


def test_runner_skips_bad_files(tmp_path):
    layout, rows = make_dataset(tmp_path)
    e = entry("mel")
    report = runner.compute_spectrograms(layout, e, n_jobs=1, progress=False)
    assert report.done == 3 and report.skipped == 0
    assert [f[0] for f in report.failed] == ["B0", "B1", "B2"]
    assert "3 computed" in report.summary().replace("spectrograms ", "") and "3 failed" in report.summary()
    errors = fileio.read_tsv(layout.spectrogram_errors("T"), ncols=3)
    assert [r[0] for r in errors] == ["B0", "B1", "B2"]
    assert [Path(r[1]).name for r in errors] == ["empty.wav", "cut.wav", "junk.mp3"]
    for row, word in zip(errors, ["empty", "truncated", "cannot decode"]):
        assert word in row[2]
    for i in range(3):
        s = np.load(layout.spectrogram("T", f"G{i}"))
        assert s.dtype == np.float32 and s.shape == (1 + 2 * SR // e.hop, 96)
    assert not layout.spectrogram("T", "B0").exists()
    assert fileio.read_json(layout.spectrogram_params("T")) == e.spectrogram_params()
    assert not list(layout.spectrograms_dir("T").glob(".*tmp"))


def test_runner_resumes_and_rewrites_errors(tmp_path):
    layout, rows = make_dataset(tmp_path)
    e = entry("mel")
    runner.compute_spectrograms(layout, e, n_jobs=1, progress=False)
    mtimes = {p.name: p.stat().st_mtime_ns for p in layout.spectrograms_dir("T").glob("*.npy")}
    again = runner.compute_spectrograms(layout, e, n_jobs=1, progress=False)
    assert (again.done, again.skipped, len(again.failed)) == (0, 3, 3)
    assert {p.name: p.stat().st_mtime_ns for p in layout.spectrograms_dir("T").glob("*.npy")} == mtimes
    # fixing one bad file: only it is computed, and the errors file shrinks
    write_wav(tmp_path / "audio" / "empty.wav", tone(seconds=1.0))
    third = runner.compute_spectrograms(layout, e, n_jobs=1, progress=False)
    assert (third.done, third.skipped, len(third.failed)) == (1, 3, 2)
    assert [r[0] for r in fileio.read_tsv(layout.spectrogram_errors("T"))] == ["B1", "B2"]
    for name in ("cut.wav", "junk.mp3"):
        write_wav(tmp_path / "audio" / name, tone(seconds=1.0))
    last = runner.compute_spectrograms(layout, e, n_jobs=1, progress=False)
    assert (last.done, last.skipped, last.failed) == (2, 4, [])
    assert not layout.spectrogram_errors("T").exists()


def test_runner_params_mismatch(tmp_path):
    layout, _ = make_dataset(tmp_path, n_good=2, bad=False)
    runner.compute_spectrograms(layout, entry("mel"), n_jobs=1, progress=False)
    other = entry("mel", hop=512)
    with pytest.raises(DataMismatch, match="overwrite=True") as info:
        runner.compute_spectrograms(layout, other, n_jobs=1, progress=False)
    assert "hop" in str(info.value) and str(layout.spectrograms_dir("T")) in str(info.value)
    report = runner.compute_spectrograms(layout, other, n_jobs=1, progress=False, overwrite=True)
    assert (report.done, report.skipped) == (2, 0)
    assert np.load(layout.spectrogram("T", "G0")).shape[0] == 1 + 2 * SR // 512
    assert fileio.read_json(layout.spectrogram_params("T"))["hop"] == 512


def test_runner_parallel_matches_serial(tmp_path):
    layout1, _ = make_dataset(tmp_path / "a", n_good=4, bad=True, seconds=1.0)
    layout2, _ = make_dataset(tmp_path / "b", n_good=4, bad=True, seconds=1.0)
    e = entry("cqt")
    r1 = runner.compute_spectrograms(layout1, e, n_jobs=1, progress=False)
    r2 = runner.compute_spectrograms(layout2, e, n_jobs=2, progress=False)
    assert (r2.done, len(r2.failed)) == (r1.done, len(r1.failed)) == (4, 3)
    assert [f[0] for f in r2.failed] == [f[0] for f in r1.failed]
    for i in range(4):
        np.testing.assert_array_equal(np.load(layout1.spectrogram("T", f"G{i}")),
                                      np.load(layout2.spectrogram("T", f"G{i}")))


def test_runner_missing_index_and_index_file(tmp_path):
    layout = DataLayout(tmp_path)
    with pytest.raises(MissingInput) as info:
        runner.compute_spectrograms(layout, entry(), progress=False)
    assert str(layout.audio_index("T")) in str(info.value)
    write_wav(tmp_path / "sounds" / "x.wav", tone(seconds=1.0))
    fileio.write_text(layout.index_dir / "mine.tsv", "X1\tx.wav")  # no final newline
    e = entry(index_file="mine.tsv", audio_folder="sounds")
    report = runner.compute_spectrograms(layout, e, n_jobs=1, progress=False)
    assert report.done == 1 and layout.spectrogram("T", "X1").exists()
    with pytest.raises(MissingInput, match="other.tsv"):
        runner.compute_spectrograms(layout, replace(e, index_file="other.tsv"), progress=False)


def test_runner_bad_parameters_are_config_errors(tmp_path):
    layout, _ = make_dataset(tmp_path, n_good=1, bad=False, seconds=0.5)
    with pytest.raises(ConfigError, match="Nyquist"):
        runner.compute_spectrograms(layout, entry("cqt", cqt_bins=120), n_jobs=1, progress=False)
    assert not layout.spectrograms_dir("T").exists()


# -------------------------------------------------------------------------------- patches
def make_spectrograms(root, lengths, e, splits):
    """Spectrograms whose value at (t, b) is 1000 * item number + t; and the split files."""
    layout = DataLayout(root)
    bins = e.n_bins
    for k, (item_id, n) in enumerate(lengths.items()):
        spec = (1000 * (k + 1) + np.arange(n, dtype=np.float32))[:, None] * np.ones(bins, np.float32)
        fileio.save_npy(layout.spectrogram("T", item_id), spec)
    fileio.write_json(layout.spectrogram_params("T"), e.spectrogram_params())
    for set_, ids in splits.items():
        fileio.write_text(layout.items_index(set_, "T"), "\n".join(ids))  # no final newline
    return layout


def read_patches(path):
    with h5py.File(path, "r") as h5:
        return (h5["features"][...], list(h5["index"].asstr()[...]), json.loads(h5.attrs["params"]),
                h5["features"].chunks, json.loads(h5.attrs["missing"]))


PATCH_ENTRY = entry("mel", n_mels=8, window=1.0, npatches=2)  # 21-frame patches


def test_patches_file_content(tmp_path):
    e = PATCH_ENTRY
    layout = make_spectrograms(tmp_path, {"a": 100, "b": 60, "c": 200}, e,
                               {"train": ["c", "a", "b"], "val": ["b"], "test": ["a"]})
    out = patches.create_patches(layout, e)
    assert set(out) == {"train", "val", "test"}
    assert out["train"] == layout.patches("train", "T", 2, 1.0)
    feats, index, params, chunks, missing = read_patches(out["train"])
    assert feats.dtype == np.float32 and feats.shape == (6, 21, 8, 1)
    assert chunks == (1, 21, 8, 1)
    assert index == ["c", "c", "a", "a", "b", "b"]
    assert missing == []
    assert params["n_frames"] == 21 and params["npatches"] == 2 and params["mode"] == "random"
    assert params["spectrogram_type"] == "mel" and params["seed"] == 0
    item_of = {"a": 1, "b": 2, "c": 3}
    for row, item_id in zip(feats[..., 0], index):
        start = row[0, 0] - 1000 * item_of[item_id]
        np.testing.assert_array_equal(row[:, 0], 1000 * item_of[item_id] + start + np.arange(21))
        assert np.all(row == row[:, :1])
    assert not list(layout.patches_dir.glob(".*tmp"))


def test_patches_random_deterministic_by_seed(tmp_path):
    e = replace(PATCH_ENTRY, npatches=4)
    layout = make_spectrograms(tmp_path, {"a": 500, "b": 400}, e, {"train": ["a", "b"]})

    def starts(seed):
        path = patches.create_patches(layout, e, sets=("train",), seed=seed)["train"]
        feats = read_patches(path)[0]
        return feats[:, 0, 0, 0].copy()

    first, again, other = starts(7), starts(7), starts(8)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_patches_even_mode_positions(tmp_path):
    e = PATCH_ENTRY
    layout = make_spectrograms(tmp_path, {"a": 121}, e, {"train": ["a"]})
    path = patches.create_patches(layout, e, sets=("train",), npatches=3, mode="even")["train"]
    feats = read_patches(path)[0]
    np.testing.assert_array_equal(feats[:, 0, 0, 0] - 1000, [0, 50, 100])  # 121 - 21 = 100 frames of room
    path = patches.create_patches(layout, e, sets=("train",), npatches=1, mode="even")["train"]
    assert read_patches(path)[0][0, 0, 0, 0] - 1000 == 50  # one patch: the middle


def test_short_clip_padded_with_silence(tmp_path):
    e = PATCH_ENTRY
    layout = make_spectrograms(tmp_path, {"a": 5}, e, {"train": ["a"]})
    feats = read_patches(patches.create_patches(layout, e, sets=("train",))["train"])[0]
    assert feats.shape == (2, 21, 8, 1)
    for patch in feats[..., 0]:
        np.testing.assert_array_equal(patch[:5, 0], 1000 + np.arange(5))
        assert np.all(patch[5:] == np.float32(features.SILENCE_DB))
    lin = replace(e, log=False)
    layout = make_spectrograms(tmp_path / "lin", {"a": 5}, lin, {"train": ["a"]})
    feats = read_patches(patches.create_patches(layout, lin, sets=("train",))["train"])[0]
    assert np.all(feats[:, 5:] == 0.0)


def test_item_without_spectrogram_is_reported_not_shifted(tmp_path):
    e = replace(PATCH_ENTRY, npatches=1)
    layout = make_spectrograms(tmp_path, {"a": 50, "b": 50, "c": 50}, e, {"train": ["a", "b", "c"]})
    layout.spectrogram("T", "b").unlink()
    with pytest.warns(UserWarning, match="1 of 3 items have no spectrogram.*b"):
        out = patches.create_patches(layout, e, sets=("train",))
    assert out.missing == {"train": ["b"]} and out.counts == {"train": 2}
    feats, index, _, _, missing = read_patches(out["train"])
    assert index == ["a", "c"] and missing == ["b"]
    assert feats[0, 0, 0, 0] // 1000 == 1 and feats[1, 0, 0, 0] // 1000 == 3  # c's patch is c's


def test_patches_missing_inputs(tmp_path):
    e = PATCH_ENTRY
    layout = DataLayout(tmp_path)
    with pytest.raises(MissingInput) as info:
        patches.create_patches(layout, e)
    assert str(layout.spectrograms_dir("T")) in str(info.value)
    assert "tartarus spectrograms T" in str(info.value)
    layout = make_spectrograms(tmp_path, {"a": 50}, e, {"train": ["a"]})
    with pytest.raises(MissingInput) as info:
        patches.create_patches(layout, e)  # no val split
    assert str(layout.items_index("val", "T")) in str(info.value)
    assert not layout.patches("train", "T", 2, 1.0).exists()
    with pytest.raises(DataMismatch, match="n_mels"):
        patches.create_patches(layout, replace(e, n_mels=16), sets=("train",))


# ------------------------------------------------------------------------------ real data
@pytest.mark.skipif(not (SHARED_SUPER / "audio").is_dir(), reason="shared/super is absent")
def test_super_mp3_cqt(tmp_path):
    src = SHARED_SUPER / "audio" / "a_vacilar.mp3"
    mp3 = tmp_path / "a_vacilar.mp3"
    shutil.copyfile(src, mp3)
    e = entry("cqt", cqt_bins=96, bins_per_octave=12)
    s = features.spectrogram_from_file(mp3, e)
    assert s.dtype == np.float32 and s.shape[1] == 96
    assert abs(s.shape[0] - 30 * SR / e.hop) < 10  # ~30 s of frames
    assert not np.isnan(s).any()
    assert s.max() > -30 and s.min() >= features.SILENCE_DB - 1e-3


@pytest.mark.parametrize("n_jobs", [0, 1.5, True])
def test_runner_refuses_a_bad_n_jobs_before_writing(tmp_path, n_jobs):
    layout, _ = make_dataset(tmp_path, n_good=1, bad=False, seconds=0.5)
    with pytest.raises(ConfigError, match=rf"n_jobs must be a non-zero integer .*got {n_jobs!r}"):
        runner.compute_spectrograms(layout, entry("mel"), n_jobs=n_jobs, progress=False)
    assert not layout.spectrograms_dir("T").exists()
