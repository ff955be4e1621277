"""A new dataset without editing the package: the data root's own datasets.toml, and datasets with no entry."""

import re
import tomllib

import numpy as np
import pytest
import soundfile as sf

from tartarus import fileio
from tartarus.cli import main
from tartarus.config import Registry
from tartarus.errors import ConfigError
from tartarus.layout import DataLayout


def test_the_data_roots_entry_wins_over_the_package_entry(tmp_path, capsys):
    lay = DataLayout(tmp_path / "data")
    lay.root.mkdir()
    lay.datasets_file().write_text('[SUPER]\nresample_sr = 16000\n\n[MINE]\nbase = "DUMMY"\nn_mels = 32\n')
    package = Registry()
    reg = Registry(data_root=lay.root)
    assert package.dataset("SUPER").spectrogram_type == "cqt"
    super_ = reg.dataset("SUPER")  # the whole entry is the data root's: no cqt from the package's
    assert (super_.resample_sr, super_.spectrogram_type) == (16000, "mel")
    assert reg.source("SUPER") == lay.datasets_file() and reg.source("DUMMY") == package.source("DUMMY")
    mine = reg.dataset("MINE")  # a new entry may build on a package entry
    assert (mine.n_mels, mine.audio_ext, mine.sequence_length) == (32, ("wav",), 500)  # DUMMY's
    assert "MINE" in reg.dataset_names() and "MINE" not in package.dataset_names()
    assert main(["show", "SUPER", "--data-dir", str(lay.root)]) == 0
    out = capsys.readouterr().out
    assert f"(from {lay.datasets_file()})" in out and '"resample_sr": 16000' in out


def test_a_bad_data_root_entry_names_its_file(tmp_path):
    (tmp_path / "datasets.toml").write_text('[X]\nspectrogram_type = "wavelet"\n')
    with pytest.raises(ConfigError, match=r"dataset 'X'.spectrogram_type: 'wavelet' is not one of"):
        Registry(data_root=tmp_path).dataset("X")
    (tmp_path / "datasets.toml").write_text("[X\n")
    with pytest.raises(ConfigError, match=r"datasets.toml: not valid TOML"):
        Registry(data_root=tmp_path)
    (tmp_path / "datasets.toml").write_text("[dummy_audio]\nn_mels = 3\n")  # the name of an experiment
    with pytest.raises(ConfigError, match="has the name of the experiment"):
        Registry(data_root=tmp_path)


def test_spectrograms_of_a_dataset_declared_in_the_data_root(tmp_path, capsys):
    lay = DataLayout(tmp_path / "data")
    sr = 8000
    t = np.arange(sr) / sr  # one second: a 440 Hz tone
    (lay.root / "sounds").mkdir(parents=True)
    sf.write(lay.root / "sounds" / "tone.wav", 0.5 * np.sin(2 * np.pi * 440 * t), sr)
    fileio.write_tsv(lay.audio_index("MINE"), [("tone", "tone.wav")])
    lay.datasets_file().write_text('MINE = { audio_folder = "sounds", audio_ext = ["wav"], resample_sr = 8000, '
                                   'n_fft = 512, hop = 256, n_mels = 24 }\n')
    assert main(["spectrograms", "MINE", "-j", "1", "--data-dir", str(lay.root)]) == 0
    assert "1 spectrograms computed" in capsys.readouterr().out
    spec = np.load(lay.spectrogram("MINE", "tone"))
    assert spec.shape == (1 + sr // 256, 24)  # centred frames of the entry's hop, its mel bins
    assert fileio.read_json(lay.spectrogram_params("MINE"))["n_mels"] == 24


def test_an_audio_command_on_a_dataset_with_no_entry_says_where_the_entry_goes(tmp_path, capsys):
    lay = DataLayout(tmp_path / "data")
    lay.root.mkdir()
    assert main(["spectrograms", "LFM", "--data-dir", str(lay.root)]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "dataset 'LFM' has no entry" in err
    assert f"add one to {lay.datasets_file()}" in err
    assert main(["patches", "LFM", "--data-dir", str(lay.root)]) == 2
    assert str(lay.datasets_file()) in capsys.readouterr().err
    # the example given is an entry that works as it is
    example = re.search(r"e\.g\. the line: (.*)$", err.strip()).group(1)
    lay.datasets_file().write_text(example + "\n")
    assert set(tomllib.loads(example)) == {"LFM"}
    entry = Registry(data_root=lay.root).dataset("LFM")
    assert (entry.name, entry.spectrogram_type, entry.audio_folder) == ("LFM", "mel", "audio")
    # a name that is not a bare TOML key is quoted
    with pytest.raises(ConfigError, match=r'the line: "my set" = \{'):
        Registry(data_root=lay.root).dataset("my set")


WORDS = {0: "guitar riff loud drums distortion", 1: "piano soft strings calm quiet", 2: "beat bass synth dance club"}


def _lfm_root(root, n=30, users=40, seed=0):
    """A dataset LFM with texts, splits and play counts, and no dataset entry anywhere."""
    rng = np.random.default_rng(seed)
    lay = DataLayout(root)
    ids = [f"a{i:03d}" for i in range(n)]
    group = {item: i % 3 for i, item in enumerate(ids)}
    (lay.text_dir).mkdir(parents=True)
    for item in ids:
        words = WORDS[group[item]].split()
        (lay.text_dir / f"{item}.txt").write_text(" ".join(rng.choice(words, size=12)) + " music")
    fileio.write_tsv(lay.text_index("LFM"), [(item, f"{item}.txt") for item in ids])
    for set_, members in (("train", ids[:20]), ("val", ids[20:25]), ("test", ids[25:])):
        fileio.write_lines(lay.items_index(set_, "LFM"), members)
    rows = []
    for u in range(users):  # each user plays the items of one group
        liked = [item for item in ids if group[item] == u % 3]
        for item in rng.choice(liked, size=6, replace=False):
            rows.append((f"u{u}", item, int(rng.integers(1, 9))))
    fileio.write_tsv(root / "plays.tsv", rows)
    return lay


def test_a_dataset_with_no_entry_runs_text_factors_and_a_vector_experiment(tmp_path, capsys):
    lay = _lfm_root(tmp_path / "data")
    root = str(lay.root)
    assert main(["text", "vsm", "LFM", "--data-dir", root]) == 0  # was: unknown dataset 'LFM'
    x = fileio.load_sparse(lay.x("train", "bow", "LFM", sparse=True))
    assert x.shape[0] == 20 and np.allclose(np.asarray(x.multiply(x).sum(axis=1)).ravel(), 1)
    assert main(["interactions", "import", str(lay.root / "plays.tsv"), "--dataset", "LFM", "--data-dir", root]) == 0
    assert main(["factors", "LFM", "--method", "als", "--dim", "4", "--data-dir", root]) == 0
    assert fileio.load_npy(lay.y("train", "als", 4, "LFM")).shape == (20, 4)
    assert main(["run", "dummy_text_als", "bow", "--data-dir", root, "--set", "dataset.dataset=LFM",
                 "--set", "training.n_epochs=2"]) == 0
    capsys.readouterr()
    result = fileio.read_json(lay.result("model_1", "test"))
    assert result["n_users"] > 0
    assert np.isfinite(fileio.load_npy(lay.prediction("model_1", "test"))).all()
    predicted = fileio.read_lines(lay.prediction_index("model_1", "test"))
    assert predicted == fileio.read_lines(lay.items_index("test", "LFM"))
