"""Interactions import (tartarus.interactions), the cold-start protocol (tartarus.splits), ALS and PMI
factors (tartarus.factors) and the stage composed (pipeline.make_factors)."""

import gzip
import json

import numpy as np
import pytest
import scipy.sparse as sp

from tartarus import factors as F
from tartarus import interactions as I
from tartarus import splits as S
from tartarus import fileio
from tartarus.datasets.dummy import generate_dummy
from tartarus.errors import ConfigError, DataMismatch, MissingInput
from tartarus.layout import DataLayout
from tartarus.pipeline import make_factors

DS = "T"


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _dense(layout, ds=DS):
    m, users, items = I.load_interactions(layout, ds)
    return m.toarray(), users, items


# ------------------------------------------------------------------------------------ import
def test_import_lastfm_style_tsv_by_position(tmp_path):
    layout = DataLayout(tmp_path / "data")
    src = _write(tmp_path / "plays.tsv",
                 "u2\tmbid-b\tBand \"B\", the\t5\n"
                 "u1\tmbid-a\tArtist A\t3\n"
                 "u1\tmbid-b\tBand \"B\", the\t2\n"
                 "\n"
                 "u1\tmbid-a\tArtist A\t4\n")  # a duplicate of line 2: summed
    report = I.import_interactions(src, layout, DS, item_col=1, count_col=3)
    assert (report.sep, report.header, report.n_records, report.n_duplicates) == ("\t", False, 4, 1)
    m, users, items = _dense(layout)
    assert users == ["u1", "u2"] and items == ["mbid-a", "mbid-b"]  # sorted ids
    np.testing.assert_array_equal(m, [[7, 2], [0, 5]])
    assert fileio.read_lines(layout.interaction_users(DS)) == users
    assert fileio.load_sparse(layout.interactions_matrix(DS)).dtype == np.float32
    assert json.loads(layout.interactions_params(DS).read_text())["n_interactions"] == 3

    # the same file keyed by artist name (the name holds quotes and a comma: TSV has no quoting)
    I.import_interactions(src, layout, DS, item_col=2, count_col=3, overwrite=True)
    _, _, items = _dense(layout)
    assert items == ["Artist A", 'Band "B", the']

    # gzip, taste-profile style (user, song, count) with the default columns
    gz = tmp_path / "triplets.txt.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as f:
        f.write("uA\tSOX\t1\nuB\tSOX\t2\nuB\tSOY\t1\n")
    report = I.import_interactions(gz, layout, "TP")
    assert report.sep == "\t"  # sniffed: no .tsv extension
    m, users, items = _dense(layout, "TP")
    np.testing.assert_array_equal(m, [[1, 0], [2, 1]])


def test_import_csv_by_header_names(tmp_path):
    layout = DataLayout(tmp_path / "data")
    src = _write(tmp_path / "plays.csv",
                 "listener,track,title,plays\n"
                 'a,t1,"Hello, world",2\n'
                 "b,t2,Plain,1\n"
                 'a,t2,"x",1\n')
    report = I.import_interactions(src, layout, DS, user_col="listener", item_col="TRACK", count_col="plays")
    assert report.header and report.sep == "," and report.columns == {"user": 0, "item": 1, "count": 3}
    m, users, items = _dense(layout)
    assert (users, items) == (["a", "b"], ["t1", "t2"])
    np.testing.assert_array_equal(m, [[2, 1], [0, 1]])

    # header auto-detected with positional columns (the count field of line 1 is not a number)
    report = I.import_interactions(src, layout, DS, item_col=1, count_col=3, overwrite=True)
    assert report.header and report.n_bad == 0 and report.n_records == 3

    with pytest.raises(ConfigError, match="no such column.*listener, track, title, plays"):
        I.import_interactions(src, layout, DS, user_col="user", overwrite=True)
    with pytest.raises(ConfigError, match="header=True"):
        I.import_interactions(src, layout, DS, user_col="listener", header=False, overwrite=True)

    # no count column: each row is one play; semicolons sniffed in a .txt file
    src = _write(tmp_path / "listens.txt", "a;t1\na;t1\nb;t1\n")
    report = I.import_interactions(src, layout, DS, count_col=None, overwrite=True)
    assert report.sep == ";"
    m, users, items = _dense(layout)
    np.testing.assert_array_equal(m, [[2], [1]])


def test_bad_rows_are_counted_not_fatal(tmp_path):
    layout = DataLayout(tmp_path / "data")
    src = _write(tmp_path / "plays.tsv",
                 "u1\ti1\t3\n"        # 1 ok
                 "u1\ti2\tmany\n"     # 2 count not a number
                 "u2\ti1\t-1\n"       # 3 negative
                 "u2\ti1\n"           # 4 missing field
                 "\ti2\t1\n"          # 5 empty user
                 "u2\ti2\t0\n"        # 6 zero: not an interaction, not bad
                 "u2\ti2\tinf\n"      # 7 non-finite
                 "u3\ti2\t1.5\n")     # 8 ok
    report = I.import_interactions(src, layout, DS, header=False, max_bad_rows=1.0)  # 5 of 8: allowed here
    assert report.n_bad == 5 and report.n_zero == 1 and report.n_records == 8
    assert [n for n, _ in report.bad_lines] == [2, 3, 4, 5, 7]
    assert report.bad_reasons["count not a number"] == 1
    assert "5 bad rows skipped: line 2 (count not a number)" in report.summary()
    m, users, items = _dense(layout)
    assert users == ["u1", "u3"] and items == ["i1", "i2"]
    np.testing.assert_array_equal(m, [[3, 0], [0, 1.5]])


def test_min_user_min_item_filtering_iterates(tmp_path):
    layout = DataLayout(tmp_path / "data")
    # min 2 each. Pass 1: D (1 item) goes, then z (only C left) goes. Pass 2: C now has only y,
    # so C goes. A single pass would have kept C.
    rows = ["A\tx\t1", "A\ty\t1", "B\tx\t1", "B\ty\t1", "C\ty\t1", "C\tz\t1", "D\tz\t1"]
    src = _write(tmp_path / "p.tsv", "\n".join(rows) + "\n")
    report = I.import_interactions(src, layout, DS, min_user=2, min_item=2)
    m, users, items = _dense(layout)
    assert (users, items) == (["A", "B"], ["x", "y"])
    assert report.filter_rounds == 2 and (report.dropped_users, report.dropped_items) == (2, 1)
    np.testing.assert_array_equal(m, np.ones((2, 2)))


def test_empty_result_is_an_error_naming_file_and_filters(tmp_path):
    layout = DataLayout(tmp_path / "data")
    src = _write(tmp_path / "p.tsv", "u1\ti1\t1\nu2\ti2\t1\n")
    with pytest.raises(DataMismatch, match=r"p\.tsv.*min_user=3, min_item=1"):
        I.import_interactions(src, layout, DS, min_user=3)
    bad = _write(tmp_path / "bad.tsv", "u1\ti1\tx\nu2\ti2\t-4\n")
    with pytest.raises(DataMismatch, match=r"no interactions read from .*bad\.tsv.*2 bad"):
        I.import_interactions(bad, layout, DS, header=False)
    assert not layout.interactions_matrix(DS).exists()


def test_load_interactions_missing_names_the_command(tmp_path):
    layout = DataLayout(tmp_path / "data")
    with pytest.raises(MissingInput, match="tartarus interactions import FILE --dataset T"):
        I.load_interactions(layout, DS)
    assert I.import_shipped_interactions(layout, DS) is None  # nothing shipped: nothing to do
    # a dataset shipping index/interactions_{ds}.tsv: loading reads only, and names that file's import
    _write(layout.interactions(DS), "u1\ti1\t2\n")
    with pytest.raises(MissingInput) as exc:
        I.load_interactions(layout, DS)
    assert f"tartarus interactions import {layout.interactions(DS)} --dataset T" in str(exc.value)
    assert not layout.splits_dir.exists()
    report = I.import_shipped_interactions(layout, DS)  # the explicit step
    assert report.n_interactions == 1 and I.import_shipped_interactions(layout, DS) is None
    m, users, items = I.load_interactions(layout, DS)
    assert m.shape == (1, 1) and (users, items) == (["u1"], ["i1"])


# -------------------------------------------------------------------------------- cold start
def _toy(root, test_counts=1.0, extra_test=False):
    """6 users, train items a..f, val v1, test t2 t1 (not sorted) and t3 absent; user U6 only in test."""
    layout = DataLayout(root)
    rng = np.random.default_rng(0)
    rows = []
    for u in range(1, 6):
        for item in rng.choice(list("abcdef"), size=3, replace=False):
            rows.append((f"U{u}", item, int(rng.integers(1, 5))))
    rows += [("U1", "v1", 2), ("U2", "v1", 1)]
    rows += [("U1", "t1", test_counts), ("U3", "t2", 4), ("U6", "t2", 1)]
    if extra_test:
        rows += [("U2", "t1", 7), ("U4", "t2", 3)]
    rows += [("U2", "zz", 1)]  # in no split
    fileio.write_tsv(layout.interactions(DS), rows)
    fileio.write_lines(layout.items_index("train", DS), list("abcdef"))
    fileio.write_lines(layout.items_index("val", DS), ["v1"])
    fileio.write_lines(layout.items_index("test", DS), ["t2", "t1", "t3"])
    I.import_shipped_interactions(layout, DS)
    return layout


def test_cold_start_matrix_test_orientation_order_and_dropped_users(tmp_path):
    layout = _toy(tmp_path / "d")
    m, users, items = I.load_interactions(layout, DS)
    split = S.cold_start_split(DS, m, users, items, S.read_item_splits(layout, DS))
    assert not layout.matrix_test(DS).exists()  # computed in memory
    S.write_held_out(layout, split)
    assert users == [f"U{i}" for i in range(1, 7)]
    assert split.absent("test") == ["t3"] and split.n_unassigned == 1
    assert split.n_users_dropped == 1 and split.n_lost("test") == 1  # U6: test only
    assert "1 users have no train interaction" in split.summary()
    mt = fileio.load_sparse(layout.matrix_test(DS))
    assert mt.shape == (3, 6)  # items (t2, t1, t3) x users
    expected = np.zeros((3, 6))
    expected[0, 2] = 4  # t2 by U3; U6's play is dropped (no train interaction, no factor)
    expected[1, 0] = 1  # t1 by U1
    np.testing.assert_array_equal(mt.toarray(), expected)
    mv = fileio.load_sparse(layout.matrix_val(DS))
    assert mv.shape == (1, 6) and mv.toarray()[0, :2].tolist() == [2, 1]
    assert split.train_matrix.shape == (6, 6)


def test_no_test_interaction_reaches_the_factorisation(tmp_path):
    a = _toy(tmp_path / "a")
    b = _toy(tmp_path / "b", test_counts=50.0, extra_test=True)
    outs = []
    for layout in (a, b):
        report = make_factors(layout, DS, F.AlsParams(iterations=5), dim=4, seed=3)
        params = json.loads(report.files["params"].read_text())
        assert params["n_fit_items"] == 6 and params["trained_on"] == "train items"
        assert set(report.files) == {"y_train", "user_factors", "params"}  # cold: no y_val / y_test
        outs.append((fileio.load_npy(report.files["y_train"]), fileio.load_npy(report.files["user_factors"])))
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    np.testing.assert_array_equal(outs[0][1], outs[1][1])
    assert outs[0][0].shape == (6, 4) and outs[0][1].shape == (6, 4)
    assert not outs[0][1][5].any()  # U6 has no train interaction: zero factor
    # the test matrices differ, the factors do not
    assert fileio.load_sparse(a.matrix_test(DS)).sum() != fileio.load_sparse(b.matrix_test(DS)).sum()
    # factorize alone reads the split and writes the factors only: the held-out matrices are
    # make_factors' explicit step (splits.write_held_out)
    c = _toy(tmp_path / "c")
    report = F.factorize(c, DS, F.AlsParams(iterations=5), dim=4, seed=3)
    np.testing.assert_array_equal(fileio.load_npy(report.files["y_train"]), outs[0][0])
    assert not c.matrix_test(DS).exists() and not c.matrix_val(DS).exists()

    # targets for every split come only on request, from one factorisation of all items
    report = make_factors(a, DS, F.AlsParams(iterations=5), dim=4, seed=3, targets_all_items=True)
    y_test = fileio.load_npy(report.files["y_test"])
    assert y_test.shape == (3, 4) and not y_test[2].any() and y_test[:2].any(axis=1).all()  # t3: no interactions
    assert json.loads(report.files["params"].read_text())["user_factors_saw_test_items"] is True


def test_random_split_is_seeded_and_guards_existing_files(tmp_path):
    layout = _toy(tmp_path / "d")
    m, users, items = I.load_interactions(layout, DS)
    first = S.random_item_splits(items, seed=5)
    with pytest.raises(ConfigError, match="already has item splits"):
        S.write_item_splits(layout, DS, first)
    S.write_item_splits(layout, DS, first, overwrite=True)
    again = S.cold_start_split(DS, m, users, items, S.read_item_splits(layout, DS)).ids
    assert first == again and sum(len(v) for v in first.values()) == len(items)
    assert (len(first["train"]), len(first["val"]), len(first["test"])) == (8, 1, 1)
    assert fileio.read_lines(layout.items_index("test", DS)) == first["test"]
    assert not set(first["train"]) & set(first["test"])


def test_split_errors(tmp_path):
    layout = _toy(tmp_path / "d")
    m, users, items = I.load_interactions(layout, DS)
    fileio.write_lines(layout.items_index("val", DS), ["v1", "a"])
    with pytest.raises(DataMismatch, match="both train and val: a"):
        S.cold_start_split(DS, m, users, items, S.read_item_splits(layout, DS))
    with pytest.raises(ConfigError, match="unknown als parameter.*pmi_source"):
        F.factor_params("als", pmi_source="class")
    with pytest.raises(ConfigError, match="method must be one of als, pmi"):
        F.factor_params("svd")
    with pytest.raises(ConfigError, match="counts must be one of raw, log, binary"):
        F.AlsParams(counts="sqrt")
    with pytest.raises(ConfigError, match="n_jobs must be a non-zero integer"):
        F.factor_params("als", n_jobs=0)
    with pytest.raises(ConfigError, match="class_dim is read only with pmi_source='class'"):
        F.factor_params("pmi", class_dim=3)
    assert F.factor_params("pmi", pmi_source="class", class_dim=3).get_config() == {
        "pmi_source": "class", "n_iter": 7, "n_oversamples": 10, "class_dim": 3}
    with pytest.raises(ConfigError, match="fact must be a name"):
        make_factors(layout, DS, "als", dim=2, fact="a/b")
    assert not layout.matrix_test(DS).exists()  # refused before anything was written


# ----------------------------------------------------------------------------------- ALS
def test_als_reproducible_with_seed(tmp_path):
    rng = np.random.default_rng(1)
    x = sp.random(40, 30, density=0.2, random_state=rng, format="csr", dtype=np.float32)
    x.data = np.ceil(x.data * 5)
    u1, i1 = F.als_factors(x, 6, seed=7, iterations=8)
    u2, i2 = F.als_factors(x, 6, seed=7, iterations=8, n_jobs=1)
    u3, _ = F.als_factors(x, 6, seed=8, iterations=8)
    assert u1.shape == (40, 6) and i1.shape == (30, 6) and u1.dtype == np.float32
    np.testing.assert_allclose(u1, u2, atol=1e-5)
    np.testing.assert_allclose(i1, i2, atol=1e-5)
    assert not np.allclose(u1, u3, atol=1e-3)


def _dummy(tmp_path):
    generate_dummy(tmp_path / "dummy", clip_seconds=0.5)
    layout = DataLayout(tmp_path / "dummy")
    classes = fileio.load_npy(layout.y("train", "class", 3, "DUMMY")).argmax(axis=1)
    return layout, classes


def _class_separation(y, classes):
    """Mean cosine of same-class and of different-class item pairs, and the share of items whose
    mean cosine to the other items of their class beats that to every other class."""
    yn = y / np.maximum(np.linalg.norm(y, axis=1, keepdims=True), 1e-12)
    cos = yn @ yn.T
    same = classes[:, None] == classes[None, :]
    off = ~np.eye(len(y), dtype=bool)
    np.fill_diagonal(cos, 0)
    members = np.stack([classes == c for c in range(3)], axis=1)  # (items, classes)
    mean_to = (cos @ members) / (members.sum(axis=0) - members)
    return cos[same & off].mean(), cos[~same].mean(), (mean_to.argmax(axis=1) == classes).mean()


def test_als_on_dummy_groups_items_by_class(tmp_path):
    layout, classes = _dummy(tmp_path)
    report = make_factors(layout, "DUMMY", F.AlsParams(regularization=0.1), dim=8, seed=0)
    y = fileio.load_npy(layout.y("train", "als", 8, "DUMMY"))
    users = fileio.load_npy(layout.user_factors("als", 8, "DUMMY"))
    assert y.shape == (len(classes), 8) and users.shape == (400, 8)
    same, cross, accuracy = _class_separation(y, classes)
    assert same > cross + 0.2 and accuracy >= 0.9, (same, cross, accuracy)
    assert report.split.n_users_dropped == 0
    assert fileio.load_sparse(layout.matrix_test("DUMMY")).shape == (
        len(fileio.read_lines(layout.items_index("test", "DUMMY"))), 400)


# ----------------------------------------------------------------------------------- PMI
def test_ppmi_hand_computed():
    # users: u1 {a,b,c}, u2 {a,b}, u3 {a,b}, u4 {c,d}, u5 {c,d}; items a b c d
    x = sp.csr_matrix(np.array([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]]) * 3)
    c = F.cooccurrence(x)  # counts made binary; diagonal dropped
    # co-occurrences: ab = 3 (u1,u2,u3), ac = 1 (u1), bc = 1 (u1), cd = 2 (u4,u5)
    np.testing.assert_array_equal(c.toarray(), [[0, 3, 1, 0], [3, 0, 1, 0], [1, 1, 0, 2], [0, 0, 2, 0]])
    # N = 2 * (3 + 1 + 1 + 2) = 14; row sums a = 4, b = 4, c = 4, d = 2
    # PMI(a,b) = log(3 * 14 / (4 * 4)) = log(2.625)
    # PMI(a,c) = log(1 * 14 / (4 * 4)) = log(0.875) < 0 -> 0;  PMI(b,c) likewise 0
    # PMI(c,d) = log(2 * 14 / (4 * 2)) = log(3.5);  a-d, b-d never co-occur -> 0
    expected = np.zeros((4, 4))
    expected[0, 1] = expected[1, 0] = np.log(2.625)
    expected[2, 3] = expected[3, 2] = np.log(3.5)
    np.testing.assert_allclose(F.ppmi(c).toarray(), expected, rtol=1e-12)


def test_svd_factors_dims_and_reconstruction():
    rng = np.random.default_rng(0)
    m = rng.random((12, 7))
    left, right, s = F.svd_factors(m, 7, seed=0)
    assert left.shape == (12, 7) and right.shape == (7, 7) and s.shape == (7,)
    np.testing.assert_allclose(left @ right.T, m, atol=1e-4)  # full rank: exact
    left3, _, s3 = F.svd_factors(m, 3, seed=0)
    assert left3.shape == (12, 3) and np.all(np.diff(s3) <= 0)
    np.testing.assert_array_equal(left3, F.svd_factors(m, 3, seed=0)[0])  # seeded
    with pytest.raises(ConfigError, match="at most 7"):
        F.svd_factors(m, 8)


def test_pmi_on_dummy_cooccurrence_and_class(tmp_path):
    layout, classes = _dummy(tmp_path)
    report = make_factors(layout, "DUMMY", "pmi", dim=8, seed=0)
    y = fileio.load_npy(report.files["y_train"])
    assert y.shape == (len(classes), 8)
    assert fileio.load_npy(report.files["user_factors"]).shape == (400, 8)
    same, cross, accuracy = _class_separation(y, classes)
    assert same > cross + 0.2 and accuracy >= 0.9, (same, cross, accuracy)

    report = make_factors(layout, "DUMMY", F.PmiParams(pmi_source="class"), dim=3, fact="pmiclass")
    y = fileio.load_npy(layout.y("train", "pmiclass", 3, "DUMMY"))
    cf = fileio.load_npy(layout.class_factors("pmiclass", 3, "DUMMY"))
    assert y.shape == (len(classes), 3) and cf.shape == (3, 3) and "user_factors" not in report.files
    # cosine with the class factors recovers each train item's class
    yn = y / np.linalg.norm(y, axis=1, keepdims=True)
    cn = cf / np.linalg.norm(cf, axis=1, keepdims=True)
    np.testing.assert_array_equal((yn @ cn.T).argmax(axis=1), classes)
    assert json.loads(layout.factor_params("pmiclass", 3, "DUMMY").read_text())["method"] == "pmi"
    with pytest.raises(ConfigError, match="at most 3"):
        make_factors(layout, "DUMMY", F.PmiParams(pmi_source="class"), dim=4)


def test_factors_command_names_n_jobs_also_for_params_from_before_it(tmp_path):
    layout = DataLayout("data")
    old = {"method": "als", "dim": 4, "params": {"num_threads": 4, "iterations": 15, "targets_all_items": False}}
    assert F.factors_command(layout, "DS", old) == "tartarus factors DS --method als --dim 4 --param n_jobs=4"
    old["params"]["num_threads"] = 0  # was every core: today's default
    assert F.factors_command(layout, "DS", old) == "tartarus factors DS --method als --dim 4"
    # the line makes the same parameters again
    from tartarus import cli
    params = F.factor_params("als", n_jobs=2, counts="log")
    line = F.factors_command(layout, "DS", {"method": "als", "dim": 4, "params": params.get_config()})
    args = cli.parse_command_line(line)
    assert (args.command, args.dataset, args.dim) == ("factors", "DS", 4)
    assert F.factor_params(args.method, **dict(cli.parse_param(p) for p in args.param)) == params


def test_n_jobs_reaches_implicit_as_its_num_threads():
    import os
    assert F._implicit_threads(-1) == 0  # implicit's "every core"
    assert F._implicit_threads(3) == 3
    assert F._implicit_threads(-2) == max(1, os.cpu_count() - 1)
    assert F._implicit_threads(-10_000) == 1
