"""An interactions import is not silently replaced, a bad file is refused, and factors made from a
replaced import are refused as stale by ``run`` and ``evaluate``."""

import json

import numpy as np
import pytest

from tartarus import factors as F
from tartarus import fileio
from tartarus import interactions as I
from tartarus.cli import main
from tartarus.config import Registry
from tartarus.datasets.dummy import generate_dummy
from tartarus.errors import ConfigError, DataMismatch
from tartarus.evaluate import evaluate_recommendation
from tartarus.layout import DataLayout
from tartarus.pipeline import make_factors
from tests.conftest import cli_error_line

DS = "T"


def _plays(path, rows):
    fileio.write_tsv(path, rows)
    return path


def test_reimport_needs_overwrite(tmp_path, capsys):
    layout = DataLayout(tmp_path / "data")
    good = _plays(tmp_path / "good.tsv", [("u1", "a", 3), ("u2", "b", 1)])
    other = _plays(tmp_path / "other.tsv", [("u1", "c", 5)])
    root = ["--dataset", DS, "--data-dir", str(layout.root)]
    assert main(["interactions", "import", str(good), *root]) == 0
    capsys.readouterr()

    assert main(["interactions", "import", str(other), *root]) == 2
    err = cli_error_line(capsys)
    assert str(layout.interactions_matrix(DS)) in err and "--overwrite" in err, err
    assert I.load_interactions(layout, DS)[2] == ["a", "b"]  # the good import is untouched
    with pytest.raises(ConfigError, match="already has an interactions import"):
        I.import_interactions(other, layout, DS)

    assert main(["interactions", "import", str(other), *root, "--overwrite"]) == 0
    m, users, items = I.load_interactions(layout, DS)
    assert (users, items) == (["u1"], ["c"]) and m.toarray().tolist() == [[5.0]]


def test_bad_rows_above_the_threshold_refuse_the_file(tmp_path, capsys):
    layout = DataLayout(tmp_path / "data")
    good = _plays(tmp_path / "good.tsv", [(f"u{i}", f"i{i % 3}", 1) for i in range(20)])
    I.import_interactions(good, layout, DS)
    before = fileio.load_sparse(layout.interactions_matrix(DS)).toarray()
    # 17 good rows and 3 bad ones (15 %): a wrong file replacing a good import
    rows = [(f"v{i}", "x", 2) for i in range(17)] + [("v1", "x", "n/a"), ("v2", "x", -1), ("v3", "", 1)]
    bad = _plays(tmp_path / "bad.tsv", rows)
    with pytest.raises(DataMismatch, match=r"bad\.tsv: 3 of 20 rows are bad \(15\.0 %, more than max_bad_rows = 1 %\)"
                                           r": line 18 \(count not a number\)"):
        I.import_interactions(bad, layout, DS, overwrite=True)
    np.testing.assert_array_equal(fileio.load_sparse(layout.interactions_matrix(DS)).toarray(), before)

    root = ["--dataset", DS, "--data-dir", str(layout.root), "--overwrite"]
    assert main(["interactions", "import", str(bad), *root]) == 2
    assert "3 of 20 rows are bad" in cli_error_line(capsys)
    with pytest.raises(SystemExit):  # not a fraction: a usage error naming the option and the range
        main(["interactions", "import", str(bad), *root, "--max-bad-rows", "1.5"])
    assert "--max-bad-rows: 1.5 is out of range; allowed: [0, 1]" in capsys.readouterr().err
    # a threshold raised on purpose takes the file, and the count is reported
    assert main(["interactions", "import", str(bad), *root, "--max-bad-rows", "0.2"]) == 0
    assert "3 bad rows skipped" in capsys.readouterr().out
    params = json.loads(layout.interactions_params(DS).read_text())
    assert (params["n_bad"], params["max_bad_rows"]) == (3, 0.2)


def test_import_id_follows_the_content():
    m = np.array([[1.0, 0.0], [2.0, 3.0]], np.float32)
    a = I.import_id(m, ["u1", "u2"], ["i1", "i2"])
    assert a == I.import_id(m.copy(), ["u1", "u2"], ["i1", "i2"]) and len(a) == 64
    assert a != I.import_id(m * 2, ["u1", "u2"], ["i1", "i2"])
    assert a != I.import_id(m, ["u1", "u2"], ["i1", "i3"])


@pytest.fixture
def dummy_factors(tmp_path):
    """The dummy dataset with 4-d ALS factors (the targets of dummy_audio_als / dummy_text_als)."""
    generate_dummy(tmp_path / "d", clip_seconds=0.5)
    layout = DataLayout(tmp_path / "d")
    make_factors(layout, "DUMMY", F.AlsParams(iterations=2), dim=4)
    return layout


def test_new_import_makes_the_factors_stale(dummy_factors, tmp_path, capsys):
    layout = dummy_factors
    params_path = layout.factor_params("als", 4, "DUMMY")
    recorded = json.loads(params_path.read_text())["interactions_import"]
    assert recorded == json.loads(layout.interactions_params("DUMMY").read_text())["import_id"]
    F.check_factors_current(layout, "DUMMY", "als", 4)  # current: no error

    # the same file again (with --overwrite) changes nothing: the factors stay current
    source = layout.interactions("DUMMY")
    report = I.import_interactions(source, layout, "DUMMY", overwrite=True)
    assert report.import_id == recorded and report.stale == []
    F.check_factors_current(layout, "DUMMY", "als", 4)

    # another file: the factors made from the old matrix are listed as stale and refused
    rows = fileio.read_tsv(source)
    changed = _plays(tmp_path / "more.tsv", rows + [["u_new", rows[0][1], "7"]])
    report = I.import_interactions(changed, layout, "DUMMY", overwrite=True)
    assert report.stale == [params_path] and "stale" in report.summary()
    assert I.stale_factors(layout, "DUMMY") == [params_path]
    remake = "tartarus factors DUMMY --method als --dim 4 --param iterations=2"
    with pytest.raises(DataMismatch, match="stale") as exc:
        F.check_factors_current(layout, "DUMMY", "als", 4)
    assert str(params_path) in str(exc.value) and remake in str(exc.value)

    # run refuses before allocating a model folder; evaluate refuses before reading predictions
    assert main(["run", "dummy_text_als", "bow", "--data-dir", str(layout.root)]) == 2
    err = cli_error_line(capsys)
    assert str(params_path) in err and remake in err, err
    assert not layout.models_dir.exists() or not any(layout.models_dir.glob("model_*"))
    exp = Registry().experiment("dummy_audio_als")
    with pytest.raises(DataMismatch, match="stale"):
        evaluate_recommendation(layout, "model_1", "test", exp, write=False)

    # remade from the new import: current again
    make_factors(layout, "DUMMY", F.AlsParams(iterations=2), dim=4)
    F.check_factors_current(layout, "DUMMY", "als", 4)
    assert I.stale_factors(layout, "DUMMY") == []
