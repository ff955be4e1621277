"""One splitting module (tartarus.splits): the five places that split items give the splits they gave
before it existed (pinned), and the primitives' edge cases."""

import numpy as np
import pytest
import scipy.sparse as sp

from tartarus import fileio, splits
from tartarus.cli import main
from tartarus.datasets.dummy import plan_dummy
from tartarus.datasets.magna import assign_splits
from tartarus.errors import ConfigError, DataMismatch, MissingInput
from tartarus.interactions import import_interactions
from tartarus.layout import DataLayout
from tartarus.train import SplitData


# ------------------------------------------------------------------ pinned: same seeds, same items
# computed with the code before tartarus.splits (factors._random_split, plan_dummy's loop,
# magna.assign_splits, SplitData.hold_out / split_sequential): a change here changes published splits
def test_cold_start_random_split_is_pinned():
    ids = [f"i{k:02d}" for k in range(13)]
    assert splits.random_item_splits(ids, (0.6, 0.2, 0.2), 5) == {
        "train": ["i00", "i04", "i05", "i06", "i08", "i10", "i11"],
        "val": ["i02", "i07", "i12"], "test": ["i01", "i03", "i09"]}


@pytest.mark.parametrize("seed,n_items,letters", [
    (0, 60, "arrrraaerarrrereerrarrerereerrraarrrrarrreaarrrrrrraeearrrre"),
    (7, 45, "rrrarreareararerrrrrrreaararrrrerrarrrreereea"),
    (0, 30, "errrareearearreeaararrrrrrrrrr"),
])
def test_dummy_split_is_pinned(seed, n_items, letters):
    # second letter of the split: tRain, vAl, tEst
    assert "".join(s[1] for s in plan_dummy(seed, n_items).split) == letters


def test_magna_song_split_is_pinned():
    songs = [f"s{k % 7}" for k in range(20)] + ["s9"] * 3
    assert assign_splits(songs, (0.7, 0.15, 0.15), 3) == {
        "s0": "train", "s1": "train", "s2": "test", "s3": "train", "s4": "train", "s5": "train",
        "s6": "train", "s9": "val"}


def _split_data(n):
    return SplitData("train", [f"x{i}" for i in range(n)], np.arange(n, dtype=np.float32)[:, None], None, None)


def test_training_hold_out_and_sequential_split_are_pinned():
    train, val = _split_data(11).hold_out(0.3, 4)
    assert [int(i[1:]) for i in train.item_ids] == [2, 3, 4, 5, 6, 7, 9, 10]
    assert [int(i[1:]) for i in val.item_ids] == [0, 1, 8]
    np.testing.assert_array_equal(val.y[:, 0], [0, 1, 8])  # targets follow their items
    train, val = _split_data(10).split_sequential(0.2, 0.1)
    # the seed's arithmetic: int(0.7 * 10) = 6 (float), int(0.2 * 10) = 2
    assert train.item_ids == [f"x{i}" for i in range(int((1 - 0.2 - 0.1) * 10))]
    assert val.item_ids == [f"x{i}" for i in range(len(train.item_ids), len(train.item_ids) + 2)]


# ------------------------------------------------------------------------------- primitives
def test_check_split_fractions():
    np.testing.assert_allclose(splits.check_split_fractions((8, 1, 1)), [0.8, 0.1, 0.1])
    np.testing.assert_allclose(splits.check_split_fractions((1, 0, 0)), [1, 0, 0])
    for bad in ((0.5, 0.5), (0, 0.5, 0.5), (0.8, -0.1, 0.3), ("a", 1, 1), (1, float("nan"), 0), None):
        with pytest.raises(ConfigError, match="fractions must be"):
            splits.check_split_fractions(bad)


def test_sizes_cut_and_random_split():
    assert splits.split_sizes(10, (0.8, 0.1, 0.1)) == (8, 1, 1)
    assert splits.split_sizes(3, (0.9, 0.05, 0.05), at_least=1) == (1, 1, 1)
    with pytest.raises(ConfigError, match=r"leave no train item out of 2"):
        splits.split_sizes(2, (0.8, 0.1, 0.1), at_least=1)
    parts = splits.cut(np.array([5, 3, 9, 0, 1]), n_val=1, n_test=2)
    assert [parts[s].tolist() for s in ("test", "val", "train")] == [[5, 3], [9], [0, 1]]
    rows = splits.random_split(50, (0.6, 0.2, 0.2), seed=1)
    assert sorted(np.concatenate(list(rows.values())).tolist()) == list(range(50))  # a partition
    assert [len(rows[s]) for s in ("train", "val", "test")] == [30, 10, 10]
    assert all((np.diff(r) > 0).all() for r in rows.values())  # each in index order
    again = splits.random_split(50, (0.6, 0.2, 0.2), seed=1)
    other = splits.random_split(50, (0.6, 0.2, 0.2), seed=2)
    assert all(np.array_equal(rows[s], again[s]) for s in rows)
    assert not np.array_equal(rows["test"], other["test"])


def test_hold_out_and_sequential_errors_name_the_setting():
    with pytest.raises(ConfigError, match="training.validation: holding out 0.9 of 2 train items"):
        splits.hold_out(2, 0.9, 0, name="training.validation")
    with pytest.raises(ConfigError, match="val = 0.05, rest = 0.1: the sequential split of 10 train items gives 8 "
                                          "to train and 0 to validate"):
        splits.sequential_split(10, 0.05, 0.1, names=("val", "rest"))


def test_balanced_split_keeps_groups_whole_and_fills_every_split():
    sizes = {f"g{k}": 1 + k % 4 for k in range(40)}
    out = splits.balanced_split(sizes, (0.8, 0.1, 0.1), seed=0)
    assert set(out) == set(sizes) and set(out.values()) == {"train", "val", "test"}
    share = {s: sum(n for g, n in sizes.items() if out[g] == s) / sum(sizes.values()) for s in ("train", "val", "test")}
    assert abs(share["train"] - 0.8) < 0.05 and abs(share["test"] - 0.1) < 0.05
    with pytest.raises(ConfigError, match="2 albums cannot fill 3 splits"):
        splits.balanced_split({"a": 1, "b": 2}, what="albums")
    assert set(splits.balanced_split({"a": 1, "b": 2}, (0.5, 0, 0.5)).values()) == {"train", "test"}


# ------------------------------------------------------------------------------- cold start
def _layout_with_interactions(root):
    layout = DataLayout(root)
    fileio.write_tsv(root / "plays.tsv", [("u1", "a", 2), ("u1", "b", 1), ("u2", "b", 3), ("u2", "c", 1),
                                          ("u3", "c", 5), ("u3", "d", 1), ("u4", "d", 2)])
    import_interactions(root / "plays.tsv", layout, "T")
    return layout


def test_cold_start_split_is_computed_in_memory_and_written_by_explicit_steps(tmp_path):
    layout = _layout_with_interactions(tmp_path / "d")
    matrix = sp.csr_matrix(np.array([[2, 1, 0, 0], [0, 3, 1, 0], [0, 0, 5, 1], [0, 0, 0, 2]], np.float32))
    ids = {"train": ["a", "b"], "val": ["c"], "test": ["d", "zz"]}
    before = sorted(p.name for p in layout.splits_dir.iterdir())
    split = splits.cold_start_split("T", matrix, ["u1", "u2", "u3", "u4"], list("abcd"), ids)
    assert sorted(p.name for p in layout.splits_dir.iterdir()) == before  # nothing written
    assert split.absent("test") == ["zz"] and split.n_users_dropped == 2  # u3, u4: no train item
    held = split.held_out("test")
    assert held.shape == (2, 4) and held.nnz == 0  # d's users u3, u4 have no train interaction
    assert split.held_out("val").toarray().tolist() == [[0, 1, 0, 0]]  # c: u2 kept, u3 dropped
    files = splits.write_held_out(layout, split)
    assert set(files) == {"matrix_val", "matrix_test"}
    np.testing.assert_array_equal(fileio.load_sparse(layout.matrix_val("T")).toarray(), [[0, 1, 0, 0]])


def test_item_splits_read_write_and_guard(tmp_path):
    layout = _layout_with_interactions(tmp_path / "d")
    with pytest.raises(MissingInput) as exc:
        splits.read_item_splits(layout, "T")
    assert f"tartarus interactions split --dataset T --data-dir {layout.root}" in str(exc.value)
    ids = splits.random_item_splits(list("abcd"), (0.5, 0.25, 0.25), seed=0)
    splits.write_item_splits(layout, "T", ids)
    assert splits.read_item_splits(layout, "T") == ids
    with pytest.raises(ConfigError, match="already has item splits"):
        splits.write_item_splits(layout, "T", ids)
    fileio.write_lines(layout.items_index("val", "T"), ids["val"] + ids["train"][:1])
    with pytest.raises(DataMismatch, match="in both train and val"):
        splits.read_item_splits(layout, "T")


def test_interactions_split_command(tmp_path, capsys):
    layout = _layout_with_interactions(tmp_path / "d")
    root = ["--data-dir", str(layout.root)]
    assert main(["interactions", "split", "--dataset", "T", "--fractions", "0.5", "0.25", "0.25", "--seed", "3",
                 *root]) == 0
    out = capsys.readouterr().out
    assert "T: 4 items split at random (seed 3): train 2, val 1, test 1" in out
    assert splits.read_item_splits(layout, "T") == splits.random_item_splits(list("abcd"), (0.5, 0.25, 0.25), 3)
    assert main(["interactions", "split", "--dataset", "T", *root]) == 2  # existing splits: refused
    assert "already has item splits" in capsys.readouterr().err
    assert main(["interactions", "split", "--dataset", "T", "--overwrite", *root]) == 0
    assert main(["interactions", "split", "--dataset", "NONE", *root]) == 2  # not imported
    assert "tartarus interactions import FILE --dataset NONE" in capsys.readouterr().err
    assert main(["interactions", "import", "--dataset", "T", *root]) == 2  # import needs its FILE
    assert "interactions import needs the triplets FILE" in capsys.readouterr().err
    assert main(["interactions", "split", "plays.tsv", "--dataset", "T", *root]) == 2
    assert "interactions split takes no FILE" in capsys.readouterr().err
