"""MagnaTagATune import on a generated miniature: parsing, skipped clips, song-level splits, files, CLI."""

import json
import re
from collections import Counter
from pathlib import PurePosixPath

import h5py
import numpy as np
import pytest

from tartarus import fileio
from tartarus.cli import main
from tartarus.datasets.magna import assign_splits, import_magna, read_annotations, song_of
from tartarus.errors import ConfigError, DataMismatch, MissingInput
from tartarus.layout import SETS, DataLayout
from tests.mini_magna import MINI_GROUPS, MINI_TAGS, make_mini_magna

DS = "MTAT"


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    return make_mini_magna(tmp_path_factory.mktemp("magna"), n_songs=9, clips_per_song=3, seed=0)


@pytest.fixture(scope="module")
def imported(mini, tmp_path_factory):
    layout = DataLayout(tmp_path_factory.mktemp("data"))
    return layout, import_magna(mini.annotations, mini.mp3_dir, layout, ds=DS, seed=0)


def _split_ids(layout, ds=DS):
    return {s: fileio.read_lines(layout.items_index(s, ds)) for s in SETS}


def _outputs(layout, n_tags=len(MINI_TAGS), ds=DS):
    paths = [layout.audio_index(ds), layout.tags_index(ds), layout.genre_labels(ds), layout.import_skipped(ds)]
    paths += [layout.items_index(s, ds) for s in SETS] + [layout.y(s, "class", n_tags, ds) for s in SETS]
    return {p.name: p.read_bytes() for p in paths}


def test_song_of_and_split_assignment():
    assert song_of("f/american_bach_soloists-j_s__bach_solo_cantatas-01-bwv54__i_aria-30-59.mp3") == \
        "american_bach_soloists-j_s__bach_solo_cantatas-01-bwv54__i_aria"
    assert song_of("3/band-album-02-title-part-2-117-146.mp3") == "band-album-02-title-part-2"
    assert song_of("odd_name.mp3") == "odd_name"
    rng = np.random.default_rng(1)
    clip_songs = [f"song{s}" for s in range(400) for _ in range(int(rng.integers(1, 12)))]
    split = assign_splits(clip_songs, (0.8, 0.1, 0.1), seed=0)
    assert split == assign_splits(list(reversed(clip_songs)), (0.8, 0.1, 0.1), seed=0)
    assert split != assign_splits(clip_songs, (0.8, 0.1, 0.1), seed=1)
    clips = Counter(split[s] for s in clip_songs)
    for set_, target in zip(SETS, (0.8, 0.1, 0.1)):
        assert abs(clips[set_] / len(clip_songs) - target) < 0.01
    assert set(assign_splits(clip_songs, (0.9, 0, 0.1)).values()) == {"train", "test"}
    with pytest.raises(ConfigError, match="fractions"):
        assign_splits(clip_songs, (0.5, 0.5))
    with pytest.raises(ConfigError, match="2 songs cannot fill 3 splits"):
        assign_splits(["a", "b", "b"])


def test_import_report_and_files(mini, imported):
    layout, report = imported
    n_rows = len(mini.clips)
    assert report.n_rows == n_rows and report.n_bad == 0
    assert report.n_clips == n_rows - 2 and report.n_songs == 9
    assert {c for c, _, _ in report.skipped} == {mini.empty_clip, mini.corrupt_clip}
    reasons = {c: why for c, _, why in report.skipped}
    assert "empty file (0 bytes)" in reasons[mini.empty_clip]
    assert "cannot decode" in reasons[mini.corrupt_clip]
    assert report.skipped_kinds == {"empty": 1, "undecodable": 1}
    assert fileio.read_tsv(layout.import_skipped(DS)) == [list(row) for row in report.skipped]
    assert report.n_untagged == 1 and report.tag_names == list(MINI_TAGS) and report.n_tags == len(MINI_TAGS)
    text = report.summary()
    for part in (f"{n_rows - 2} clips of 9 songs", "2 clips skipped (1 empty, 1 undecodable)",
                 str(layout.import_skipped(DS)), "1 clip without any tag kept", "no song in two splits"):
        assert part in text, (part, text)

    # splits: every usable clip in exactly one, ids in natural order, no song in two splits
    ids = _split_ids(layout)
    assert all(ids[s] for s in SETS)
    assert sum(report.counts.values()) == report.n_clips == sum(len(v) for v in ids.values())
    everything = [i for s in SETS for i in ids[s]]
    usable = {c for c, _, _ in mini.clips} - {mini.empty_clip, mini.corrupt_clip}
    assert len(everything) == len(set(everything)) and set(everything) == usable
    for s in SETS:
        assert ids[s] == sorted(ids[s], key=int)
    song_split, folder_song_split = {}, {}
    path_of = {c: p for c, p, _ in mini.clips}
    for s in SETS:
        for clip in ids[s]:
            assert song_split.setdefault(mini.songs[clip], s) == s, f"song {mini.songs[clip]} in two splits"
            full = str(PurePosixPath(path_of[clip]).parent / mini.songs[clip])  # the folder/name definition
            assert folder_song_split.setdefault(full, s) == s
    assert report.song_counts == dict(Counter(song_split.values()))

    # files: audio index, tags, labels, multi-hot targets aligned with the items index
    audio = dict(fileio.read_tsv(layout.audio_index(DS), ncols=2))
    assert set(audio) == usable
    for clip, path in audio.items():
        assert (layout.audio_dir / path).is_file() and path.endswith(path_of[clip])
    assert fileio.read_lines(layout.genre_labels(DS)) == list(MINI_TAGS)
    tags = {row[0]: (row[1].split(",") if len(row) > 1 else []) for row in fileio.read_tsv(layout.tags_index(DS))}
    assert set(tags) == usable
    expected = mini.tags
    assert all(tags[c] == expected[c] for c in usable) and tags[mini.untagged_clip] == []
    for s in SETS:
        y = np.load(layout.y(s, "class", len(MINI_TAGS), DS), allow_pickle=False)
        assert y.dtype == np.float32 and y.shape == (len(ids[s]), len(MINI_TAGS))
        for clip, row in zip(ids[s], y):
            assert [MINI_TAGS[j] for j in np.flatnonzero(row)] == expected[clip]
    params = json.loads(layout.import_params(DS).read_text())
    assert params["seed"] == 0 and params["fractions"] == [0.8, 0.1, 0.1]
    assert params["annotations"] == str(mini.annotations.resolve()) and params["mp3_dir"] == str(mini.mp3_dir.resolve())
    assert params["n_clips"] == report.n_clips and params["clips"] == report.counts and params["n_skipped"] == 2
    assert params["tag_clip_counts"]["ambient"] == 0


def test_deterministic_for_a_seed(mini, imported, tmp_path):
    layout, _ = imported
    again = DataLayout(tmp_path / "again")
    import_magna(mini.annotations, mini.mp3_dir, again, seed=0)
    assert _outputs(again) == _outputs(layout)
    other = DataLayout(tmp_path / "other")
    import_magna(mini.annotations, mini.mp3_dir, other, seed=1)
    assert _split_ids(other) != _split_ids(layout)
    # an existing import is kept unless overwrite: new splits would not match what was made from the old
    with pytest.raises(ConfigError, match="already imported.*--overwrite"):
        import_magna(mini.annotations, mini.mp3_dir, other, seed=0)
    import_magna(mini.annotations, mini.mp3_dir, other, seed=0, overwrite=True)
    assert _outputs(other) == _outputs(layout)


def test_bad_rows_bom_crlf_and_a_missing_clip(mini, imported, tmp_path):
    layout, clean = imported
    lines = mini.annotations.read_text().splitlines()
    width = len(MINI_TAGS) + 2
    zeros = ['"0"'] * len(MINI_TAGS)
    extra = [
        "\t".join(['"900"', *zeros[:-1], '"9/short-row-0-29.mp3"']),  # a column short
        "\t".join(['"904"', '"2"', *zeros[1:], '"9/two-0-29.mp3"']),  # not 0/1
        "\t".join(['"908"', '"x"', *zeros[1:], '"9/ex-0-29.mp3"']),
        "\t".join([f'"{mini.clips[0][0]}"', *zeros, '"9/dup-0-29.mp3"']),  # duplicate clip_id
        "\t".join(['"912"', *zeros, '"../outside-0-29.mp3"']),  # climbs out of the mp3 folder
        "",  # blank lines are not rows
        "\t".join(['"916"', '"1"', *zeros[1:], '"9/not_there-0-29.mp3"']),  # fine, but no such file
    ]
    assert all(len(e.split("\t")) == width for e in extra[1:5])
    variant = tmp_path / "annotations_final.csv"
    variant.write_bytes(("\ufeff" + "\r\n".join(lines[:5] + extra + lines[5:]) + "\r\n").encode("utf-8"))
    table = read_annotations(variant)
    assert table.delimiter == "\t" and table.tag_names == list(MINI_TAGS)
    report = import_magna(variant, mini.mp3_dir, DataLayout(tmp_path / "data"), seed=0)
    assert report.n_rows == len(mini.clips) + 6 and report.n_bad == 5
    assert report.bad_reasons == {"wrong column count": 1, "tag value not 0/1": 2, "duplicate clip_id": 1,
                                  "bad mp3_path": 1}
    assert [n for n, _ in report.bad_lines] == [6, 7, 8, 9, 10]
    assert "5 bad rows skipped: line 6" in report.summary()
    assert report.skipped_kinds == {"empty": 1, "missing": 1, "undecodable": 1}
    assert ("916", "9/not_there-0-29.mp3", "file not found") in report.skipped
    assert report.counts == clean.counts and report.tag_names == clean.tag_names
    assert _split_ids(DataLayout(tmp_path / "data")) == _split_ids(layout)


def test_tag_and_clip_filters(mini, tmp_path):
    report = import_magna(mini.annotations, mini.mp3_dir, tmp_path / "a", min_tags=1, min_tag_count=1)
    layout = DataLayout(tmp_path / "a")
    assert report.n_few_tags == 1 and report.n_clips == len(mini.clips) - 3
    assert mini.untagged_clip not in [i for ids in _split_ids(layout).values() for i in ids]
    assert report.dropped_tags == ["ambient"] and report.n_tags == len(MINI_TAGS) - 1
    assert layout.y("train", "class", len(MINI_TAGS) - 1, DS).exists()
    assert "1 clip with fewer than 1 tag dropped" in report.summary()
    top = import_magna(mini.annotations, mini.mp3_dir, tmp_path / "b", top_tags=5)
    counts = json.loads(DataLayout(tmp_path / "b").import_params(DS).read_text())["tag_clip_counts"]
    assert len(top.tag_names) == 5 and top.tag_names == [t for t in MINI_TAGS if t in top.tag_names]
    assert min(counts[t] for t in top.tag_names) >= max(counts[t] for t in top.dropped_tags)
    assert {t for group in MINI_GROUPS.values() for t in group} | {"ambient"} == set(MINI_TAGS)


def test_errors_name_the_path(mini, tmp_path):
    root = tmp_path / "data"
    missing = tmp_path / "nowhere" / "annotations_final.csv"
    with pytest.raises(MissingInput, match=re.escape(str(missing))):
        import_magna(missing, mini.mp3_dir, root)
    with pytest.raises(MissingInput, match=re.escape(str(tmp_path / "no_mp3"))):
        import_magna(mini.annotations, tmp_path / "no_mp3", root)
    header_only = tmp_path / "header_only.csv"
    header_only.write_text(mini.annotations.read_text().splitlines()[0] + "\n")
    with pytest.raises(DataMismatch, match=re.escape(f"{header_only}: no readable clip row")):
        import_magna(header_only, mini.mp3_dir, root)
    not_magna = tmp_path / "other.csv"
    not_magna.write_text("user\titem\tcount\nu1\ti1\t3\n")
    with pytest.raises(DataMismatch, match="not a MagnaTagATune annotations file"):
        import_magna(not_magna, mini.mp3_dir, root)
    empty_dir = tmp_path / "empty_mp3"
    empty_dir.mkdir()
    where = re.escape(str(empty_dir))
    with pytest.raises(DataMismatch, match=f"none of the {len(mini.clips)} clips .* is usable under {where}"):
        import_magna(mini.annotations, empty_dir, root)
    with pytest.raises(ConfigError, match="fractions"):
        import_magna(mini.annotations, mini.mp3_dir, root, fractions=(0.8, 0.2))
    assert not (root / "splits").exists()


def test_cli_import_then_spectrograms_and_patches(mini, tmp_path, experiments_dir, capsys):
    root = tmp_path / "data"
    common = ["--data-dir", str(root), "--experiments", str(experiments_dir)]
    assert main(["magna", "import", str(mini.annotations), str(mini.mp3_dir), "--dataset", DS, "--seed", "0",
                 "--fractions", "0.6", "0.2", "0.2", "--min-tags", "1", *common]) == 0
    out = capsys.readouterr().out
    assert f"{DS} imported into {root}" in out and "clips skipped (1 empty, 1 undecodable)" in out
    assert main(["magna", "import", str(tmp_path / "missing.csv"), str(mini.mp3_dir), *common]) == 2
    assert str(tmp_path / "missing.csv") in capsys.readouterr().err

    assert main(["spectrograms", DS, "-j", "1", *common]) == 0
    assert f"{len(mini.clips) - 3} spectrograms computed" in capsys.readouterr().out
    assert main(["patches", DS, *common]) == 0
    assert "1x27.82" in capsys.readouterr().out
    layout = DataLayout(root)
    for set_, ids in _split_ids(layout).items():
        with h5py.File(layout.patches(set_, DS, 1, 27.82), "r") as f:
            assert f["features"].shape == (len(ids), 599, 128, 1)
            assert [i.decode() for i in f["index"][:]] == ids
            x = f["features"][0, :, :, 0]
        assert np.all(x[200:] == -100.0) and x[:60].max() > -100.0  # 3 s clips, padded with silence


@pytest.mark.parametrize("kwargs,message", [
    ({"n_jobs": 0}, "n_jobs must be an integer >= 1, got 0"),
    ({"n_jobs": -1}, "n_jobs must be an integer >= 1, got -1"),  # threads, not joblib: no "every core"
    ({"top_tags": 0}, "top_tags must be an integer >= 1, got 0"),
    ({"seed": 1.0}, "seed must be an integer >= 0, got 1.0"),
    ({"min_tags": -1}, "min_tags must be an integer >= 0, got -1"),
])
def test_bad_arguments_refused_before_anything_is_read(tmp_path, kwargs, message):
    # neither the annotations nor the mp3 folder exists: the arguments are checked first
    with pytest.raises(ConfigError) as err:
        import_magna(tmp_path / "annotations_final.csv", tmp_path / "mp3", DataLayout(tmp_path / "data"), **kwargs)
    assert str(err.value) == message
