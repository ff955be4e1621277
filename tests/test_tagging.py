"""Batch extraction with the pretrained taggers, ``tartarus tag`` and ``tartarus embed`` (issue 14).

Needs the musicnn 0.1.0 weights (``make pretrained``) and the real SUPER songs (../shared/super);
the numbers are held to tests/data/musicnn_reference.npz (the original package's taggrams).
"""

import shutil
from pathlib import Path

import numpy as np
import pytest

from tartarus import pretrained
from tartarus.cli import main, parse_command_line
from tartarus.errors import ConfigError
from tartarus.fileio import load_npy, read_items_index
from tartarus.inputs import input_command, reads_sparse
from tartarus.layout import DataLayout
from tests.conftest import SUPER, cli_error_line

REFERENCE = Path(__file__).parent / "data" / "musicnn_reference.npz"
SONGS = ("a_vacilar", "berlina", "canariedad")  # one per genre; all nine in the embed test

needs_weights = pytest.mark.skipif(not pretrained.weights_installed(),
                                   reason="musicnn weights not installed: make pretrained")
needs_super = pytest.mark.skipif(not (SUPER / "audio").is_dir(), reason=f"real SUPER audio not found at {SUPER}")
pytestmark = [needs_weights, needs_super]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("pretrained_cache")


@pytest.fixture(scope="module")
def reference():
    with np.load(REFERENCE, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


@pytest.fixture(scope="module")
def musicnn(cache_dir):
    return pretrained.load_pretrained("MTT_musicnn", cache_dir)


@pytest.fixture
def songs(tmp_path):
    """Three SUPER songs copied to a writable folder, plus nothing else."""
    folder = tmp_path / "songs"
    folder.mkdir()
    for song in SONGS:
        shutil.copy(SUPER / "audio" / f"{song}.mp3", folder / f"{song}.mp3")
    return folder


def reference_top(reference, model, song, n=5):
    labels = list(reference[f"{model}/labels"])
    mean = reference[f"{model}/{song}/taggram"].mean(axis=0)
    return [labels[i] for i in mean.argsort()[-n:][::-1]]


def printed_tags(out):
    """``{path: [tags]}`` from musicnn-style output: ``[path] TopN tags: `` then `` - tag`` lines."""
    tags, current = {}, None
    for line in out.splitlines():
        if line.startswith("[") and "] Top" in line:
            current = line[1:line.index("] Top")]
            tags[current] = []
        elif line.startswith(" - ") and current is not None:
            tags[current].append(line[3:])
    return tags


# ------------------------------------------------------------------------------ tartarus tag
def test_tag_prints_the_original_top_tags_and_writes_taggrams(songs, tmp_path, cache_dir, reference, capsys):
    (songs / "broken.mp3").write_bytes(b"ID3 this is no audio" * 50)
    out = tmp_path / "taggrams"
    assert main(["tag", str(songs), "-n", "5", "--out", str(out), "--cache-dir", str(cache_dir)]) == 0
    captured = capsys.readouterr()
    tags = printed_tags(captured.out)
    # the folder is walked in sorted order; the broken file is skipped and listed, not fatal
    assert list(tags) == [str(songs / f"{s}.mp3") for s in sorted(SONGS)]
    for song in SONGS:
        assert tags[str(songs / f"{song}.mp3")] == reference_top(reference, "MTT_musicnn", song)
    assert f"skipped {songs / 'broken.mp3'}: cannot decode" in captured.err
    labels = (out / "tags.txt").read_text(encoding="utf-8").splitlines()
    assert labels == list(reference["MTT_musicnn/labels"])
    assert sorted(p.name for p in out.iterdir()) == sorted([f"{s}.npy" for s in SONGS] + ["tags.txt"])
    for song in SONGS:
        taggram = load_npy(out / f"{song}.npy")
        expected = reference[f"MTT_musicnn/{song}/taggram"]
        assert taggram.dtype == np.float32 and taggram.shape == expected.shape == (10, 50)
        assert np.abs(taggram - expected).mean() < 1e-3


def test_tag_fails_only_when_every_file_fails(tmp_path, cache_dir, capsys):
    short = tmp_path / "short.wav"
    import soundfile as sf
    sf.write(short, np.zeros(16000 * 2, np.float32), 16000)  # 2 s: shorter than one 3 s patch
    missing = tmp_path / "absent.mp3"
    assert main(["tag", str(short), str(missing), "--cache-dir", str(cache_dir)]) == 2
    err = capsys.readouterr().err
    assert f"skipped {short}: " in err and "shorter than one 187-frame patch" in err
    assert f"skipped {missing}: file not found" in err
    assert "none of the 2 file(s) could be tagged" in err


def test_tag_refuses_two_files_with_one_stem_before_any_work(songs, tmp_path, cache_dir, capsys):
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(songs / "berlina.mp3", other / "berlina.mp3")
    out = tmp_path / "out"
    assert main(["tag", str(songs), str(other), "--out", str(out), "--cache-dir", str(cache_dir)]) == 2
    line = cli_error_line(capsys)
    assert "berlina.mp3" in line and "separate --out folders" in line
    assert not out.exists()


def test_tag_names_an_unknown_model_and_an_empty_folder(tmp_path, cache_dir, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["tag", str(tmp_path / "empty"), "--cache-dir", str(cache_dir)]) == 2
    assert "no audio files in this folder" in cli_error_line(capsys)
    assert main(["tag", str(tmp_path), "--model", "MTT_resnet", "--cache-dir", str(cache_dir)]) == 2
    assert "MTT_musicnn, MSD_musicnn, MTT_vgg, MSD_vgg" in cli_error_line(capsys)


# ------------------------------------------------------------------------------ batching
def test_batches_across_files_give_each_file_its_own_taggram(songs, musicnn, reference):
    from tartarus.tagging import extract
    files = [songs / f"{s}.mp3" for s in SONGS]
    # 7 patches a batch: every 10-patch file straddles two or three batches, shared with its neighbours
    together = extract(files, "MTT_musicnn", ("taggram", "penultimate"), batch_size=7, progress=False,
                       model=musicnn)
    assert [f.path for f in together.files] == [str(p) for p in files] and not together.failed
    for path, got in zip(files, together.files):
        alone = extract([path], "MTT_musicnn", ("taggram", "penultimate"), progress=False, model=musicnn).files[0]
        for layer in ("taggram", "penultimate"):
            assert got.outputs[layer].shape == alone.outputs[layer].shape
            np.testing.assert_allclose(got.outputs[layer], alone.outputs[layer], rtol=0, atol=2e-5)
        expected = reference[f"MTT_musicnn/{path.stem}/taggram"]
        assert np.abs(got.outputs["taggram"] - expected).mean() < 1e-3


def test_worker_processes_give_the_same_numbers(songs, musicnn):
    from tartarus.tagging import extract
    files = [songs / f"{s}.mp3" for s in SONGS] + [songs / "absent.mp3"]
    one = extract(files, "MTT_musicnn", "taggram", n_jobs=1, batch_size=16, progress=False, model=musicnn)
    two = extract(files, "MTT_musicnn", "taggram", n_jobs=2, batch_size=16, progress=False, model=musicnn)
    assert [f.path for f in one.files] == [f.path for f in two.files] == [str(p) for p in files[:3]]
    assert one.failed == two.failed == [(str(files[3]), "file not found")]
    for a, b in zip(one.files, two.files):  # the same batches in the same order: the same numbers
        # (to float32 rounding: oneDNN may pick another kernel when the machine is loaded)
        np.testing.assert_allclose(a.outputs["taggram"], b.outputs["taggram"], rtol=1e-5, atol=1e-7)


def test_pooled_layers_are_the_mean_over_time(songs, musicnn):
    from tartarus.tagging import extract
    path = [songs / "berlina.mp3"]
    full = extract(path, "MTT_musicnn", ("temporal", "penultimate"), progress=False, model=musicnn).files[0]
    pooled = extract(path, "MTT_musicnn", ("temporal", "penultimate"), pooled=True, progress=False,
                     model=musicnn).files[0]
    assert full.outputs["temporal"].shape == (10, 187, 153) and pooled.outputs["temporal"].shape == (10, 153)
    np.testing.assert_allclose(pooled.outputs["temporal"], full.outputs["temporal"].mean(axis=1), atol=1e-5)
    np.testing.assert_array_equal(pooled.outputs["penultimate"].shape, (10, 200))
    with pytest.raises(ConfigError, match="no layer 'pool5'.*penultimate"):
        extract(path, "MTT_musicnn", "pool5", progress=False, model=musicnn)


# ------------------------------------------------------------------------------ tartarus embed
def test_embed_feeds_a_vector_experiment(super_root, cache_dir, reference, musicnn, capsys):
    from tartarus.tagging import extract
    root = str(super_root)
    layout = DataLayout(super_root)
    # one item's audio is corrupt: left out of its set's array and index, and listed
    (super_root / "audio" / "soy_un_volcan.mp3").write_bytes(b"\0" * 4096)
    assert main(["embed", "MTT_musicnn", "SUPER", "--data-dir", root, "--cache-dir", str(cache_dir)]) == 0
    out = capsys.readouterr().out
    suffix = "MTT_musicnn-penultimate"
    songs = dict(line.split("\t") for line in (super_root / "index" / "index_audio_SUPER.tsv").read_text().split("\n")
                 if line.strip())
    for set_ in ("train", "val", "test"):
        ids = read_items_index(layout.items_index(set_, "SUPER", suffix))
        split = read_items_index(layout.items_index(set_, "SUPER"))
        assert ids == [i for i in split if i != "S9"]
        x = load_npy(layout.x(set_, suffix, "SUPER"))
        assert x.dtype == np.float32 and x.shape == (len(ids), 200)
        if set_ == "train":  # each row: the mean over the song's patches of their penultimate features
            patches = extract([super_root / "audio" / songs[item] for item in ids], "MTT_musicnn", "penultimate",
                              progress=False, model=musicnn)
            for row, item, got in zip(x, ids, patches.files):
                np.testing.assert_allclose(row, got.outputs["penultimate"].mean(axis=0), atol=1e-5)
                # the original's features hold its first patch's row only (musicnn 0.1.0's extractor
                # concatenates the first batch's penultimate again for every later patch)
                expected = reference[f"MTT_musicnn/{songs[item][:-4]}/penultimate"][0]
                np.testing.assert_allclose(got.outputs["penultimate"][0], expected, atol=1e-3)
    errors = layout.input_errors(suffix, "SUPER").read_text().splitlines()
    assert len(errors) == 1 and errors[0].startswith("test\tS9\t") and "cannot decode" in errors[0]
    assert "1 item(s) left out" in out

    # the test split lacks S9: a run reading it says so, naming the file to remake
    (super_root / "audio" / "soy_un_volcan.mp3").unlink()
    shutil.copy(SUPER / "audio" / "soy_un_volcan.mp3", super_root / "audio" / "soy_un_volcan.mp3")
    x_train = layout.x("train", suffix, "SUPER")
    before = x_train.stat().st_mtime_ns
    assert main(["embed", "MTT_musicnn", "SUPER", "--data-dir", root, "--cache-dir", str(cache_dir)]) == 0
    out = capsys.readouterr().out
    assert "SUPER train" in out and "up to date" in out  # complete sets are not recomputed
    assert x_train.stat().st_mtime_ns == before
    assert load_npy(layout.x("test", suffix, "SUPER")).shape == (3, 200)
    assert not layout.input_errors(suffix, "SUPER").exists()

    # a vector experiment takes the suffix as it takes a trained model's predictions (dense, although
    # super_text_vsm reads sparse inputs)
    assert main(["run", "super_text_vsm", suffix, "--data-dir", root, "--set", "training.n_epochs=2"]) == 0
    probs = load_npy(layout.prediction("model_1", "test"))
    assert probs.shape == (3, 3) and np.isfinite(probs).all()


def test_embed_a_convolutional_layer_averages_time(super_root, cache_dir, musicnn):
    from tartarus.config import Registry
    from tartarus.tagging import embed_dataset, extract
    layout = DataLayout(super_root)
    entry = Registry(None, data_root=super_root).dataset("SUPER")
    report = embed_dataset(layout, entry, "MTT_musicnn", "cnn1", ["val"], progress=False, model=musicnn)
    assert list(report.written) == ["val"] and not report.failed
    x = load_npy(layout.x("val", "MTT_musicnn-cnn1", "SUPER"))
    ids = read_items_index(layout.items_index("val", "SUPER", "MTT_musicnn-cnn1"))
    first = super_root / "audio" / dict(r.split("\t") for r in
                                         (super_root / "index" / "index_audio_SUPER.tsv").read_text().split("\n")
                                         if r.strip())[ids[0]]
    full = extract([first], "MTT_musicnn", "cnn1", progress=False, model=musicnn).files[0].outputs["cnn1"]
    assert x.shape == (3, 64)
    np.testing.assert_allclose(x[0], full.mean(axis=(0, 1)), rtol=1e-4, atol=5e-5)  # float32 sums


def test_pretrained_suffixes_are_dense_and_name_their_command(tmp_path):
    layout = DataLayout(tmp_path)
    assert layout.parse_pretrained_suffix("MSD_vgg-pool5") == ("MSD_vgg", "pool5")
    assert layout.parse_pretrained_suffix("model_1-pred_9") is None
    assert layout.parse_pretrained_suffix("bow") is None
    assert not reads_sparse("MTT_musicnn-penultimate", True) and reads_sparse("bow", True)
    hint = input_command(layout, "MTT_musicnn-max_pool", "SUPER", "val")
    args = parse_command_line(hint)
    assert (args.command, args.model, args.dataset, args.layer, args.sets) == \
        ("embed", "MTT_musicnn", "SUPER", "max_pool", ["val"])


def test_vgg_tags_and_pooled_feature_maps(songs, cache_dir, reference):
    from tartarus.tagging import extract, top_tags
    path = [songs / "canariedad.mp3"]
    layers = ("pool2", "pool5", "taggram")
    full = extract(path, "MTT_vgg", layers, progress=False, cache_dir=cache_dir).files[0].outputs
    pooled = extract(path, "MTT_vgg", layers, pooled=True, progress=False, cache_dir=cache_dir).files[0].outputs
    assert full["pool2"].shape == (10, 46, 24, 128) and pooled["pool2"].shape == (10, 128)
    np.testing.assert_allclose(pooled["pool2"], full["pool2"].mean(axis=(1, 2)), rtol=1e-4, atol=5e-5)
    np.testing.assert_array_equal(pooled["pool5"], full["pool5"])  # already one vector a patch
    assert top_tags(full["taggram"], pretrained.get_spec("MTT_vgg").labels) == \
        reference_top(reference, "MTT_vgg", "canariedad")
