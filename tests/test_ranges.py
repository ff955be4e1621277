"""Value ranges checked at the boundary (issue 11, item 1).

Every numeric key of every section, and every numeric command-line option, has its allowed range;
a value outside it is one error naming the key (or option), the range and the value, raised before
anything is read or written.
"""

import dataclasses
import math
import typing

import pytest

from tartarus import cli
from tartarus.config import Registry
from tartarus.config.registry import experiment_from_dict
from tartarus.config.schema import (EXPERIMENT_SECTIONS, CnnSection, DatasetEntry, DatasetSection,
                                    EvaluatingSection, PredictingSection, Range, TrainingSection,
                                    build_section, range_of, ranged)
from tartarus.errors import ConfigError
from tartarus.layout import DataLayout

from .conftest import REPO

SECTIONS = [*EXPERIMENT_SECTIONS.values(), DatasetEntry]


def _numeric(tp):
    """True for int, float, Optional of them and tuples of them (the keys that need a range)."""
    args = [a for a in typing.get_args(tp) if a is not type(None) and a is not Ellipsis]
    if tp in (int, float):
        return True
    return bool(args) and all(_numeric(a) for a in args)


# ------------------------------------------------------------------------------ the mechanism
def test_range_notation_and_membership():
    assert str(ranged(ge=1)) == "[1, inf)"
    assert str(ranged(ge=0, lt=1)) == "[0, 1)"
    assert str(ranged(gt=0, le=1)) == "(0, 1]"
    assert str(ranged()) == "(-inf, inf)"
    assert str(ranged(exclude=(0,), note="-1 = every core")) == "(-inf, inf) except 0 (-1 = every core)"
    r = ranged(ge=0, lt=0.5)
    assert 0 in r and 0.49 in r and 0.5 not in r and -1e-9 not in r
    assert math.nan not in ranged() and math.inf not in ranged() and -math.inf not in ranged(le=0)
    assert 0 not in ranged(exclude=(0,)) and -1 in ranged(exclude=(0,))


@pytest.mark.parametrize("cls", SECTIONS, ids=lambda c: c.__name__)
def test_every_numeric_key_has_a_range_and_its_default_is_in_it(cls):
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not _numeric(hints[f.name]) or hints[f.name] is bool:
            continue
        allowed = f.metadata.get("range")
        assert isinstance(allowed, Range), f"{cls.__name__}.{f.name} has no range"
        default = f.default
        if default is not None:
            for v in (default if isinstance(default, tuple) else (default,)):
                assert v in allowed, f"{cls.__name__}.{f.name}: default {default!r} not in {allowed}"


def test_every_registry_entry_is_in_range():
    reg = Registry(REPO / "experiments")
    built = 0
    for name in reg.experiment_names():
        try:
            reg.experiment(name)
            built += 1
        except ConfigError as exc:  # abstract bases lack a dataset; nothing else may fail
            assert "missing value" in str(exc), exc
    for name in reg.dataset_names():
        reg.dataset(name)
    assert built > 20


# ---------------------------------------------------------------------------- config sections
OUT_OF_RANGE = [
    ("dataset", "dim", 0, "[1, inf)"),
    ("dataset", "npatches", 0, "[1, inf)"),
    ("dataset", "window", 0.0, "(0, inf)"),
    ("training", "n_epochs", -1, "[1, inf)"),
    ("training", "n_epochs", 0, "[1, inf)"),
    ("training", "n_minibatch", 0, "[1, inf)"),
    ("training", "learning_rate", -0.001, "(0, inf)"),
    ("training", "learning_rate", 0.0, "(0, inf)"),
    ("training", "decay", -0.5, "[0, inf)"),
    ("training", "momentum", 1.5, "[0, 1]"),
    ("training", "patience", -1, "[1, inf)"),
    ("training", "patience", 0, "[1, inf)"),
    ("training", "validation", 1.0, "[0, 1)"),
    ("training", "test", -0.1, "[0, 1)"),
    ("training", "random_seed", -1, "[0, inf)"),
    ("cnn", "n_filters_1", -8, "[0, inf)"),
    ("cnn", "n_dense", -1, "[0, inf)"),
    ("cnn", "dropout_factor", 1.0, "[0, 1)"),
    ("cnn", "num_filters", 0, "[1, inf)"),
    ("cnn", "sequence_length", 0, "[1, inf)"),
    ("cnn", "vocab_size", -1, "[0, inf)"),
    ("cnn", "rnn_dropout", -0.1, "[0, 1)"),
    ("predicting", "trim_coeff", 0.5, "[0, 0.5)"),
    ("predicting", "trim_coeff", -0.1, "[0, 0.5)"),
    ("evaluating", "map_k", 0, "[1, inf)"),
    ("evaluating", "threshold", math.inf, "(-inf, inf)"),
]


@pytest.mark.parametrize("section,key,value,allowed", OUT_OF_RANGE, ids=lambda x: str(x))
def test_out_of_range_key_is_one_error_naming_key_range_and_value(experiments_dir, section, key, value, allowed):
    reg = Registry(experiments_dir)
    with pytest.raises(ConfigError) as err:
        reg.experiment("tiny", [((section, key), value)])
    assert str(err.value) == f"experiment 'tiny': {section}.{key}: {value!r} is out of range; allowed: {allowed}" \
        + ("" if range_of(EXPERIMENT_SECTIONS[section], key).note == "" else
           f" ({range_of(EXPERIMENT_SECTIONS[section], key).note})")


def test_nan_from_toml_is_out_of_range():
    raw = {"dataset": {"dataset": "X", "dim": 3}, "training": {"learning_rate": math.nan}}
    with pytest.raises(ConfigError, match=r"training\.learning_rate: nan is out of range; allowed: \(0, inf\)"):
        experiment_from_dict("x", raw)


TUPLES = [
    ("n_kernel_1", [4, 0], "element 0 of [4, 0]", "[1, inf)"),
    ("n_pool_2", [-1, 1], "element -1 of [-1, 1]", "[1, inf)"),
    ("filter_sizes", [2, 3, 0], "element 0 of [2, 3, 0]", "[1, inf)"),
    ("dropout_prob", [0.5, 1.0], "element 1.0 of [0.5, 1.0]", "[0, 1)"),
    ("rnn_units", [32, 0], "element 0 of [32, 0]", "[1, inf)"),
]


@pytest.mark.parametrize("key,value,what,allowed", TUPLES, ids=lambda x: str(x))
def test_tuple_keys_are_checked_element_wise(experiments_dir, key, value, what, allowed):
    with pytest.raises(ConfigError) as err:
        Registry(experiments_dir).experiment("tiny", [f"cnn.{key}={value}"])
    assert str(err.value) == f"experiment 'tiny': cnn.{key}: {what} is out of range; allowed: {allowed}"


IN_RANGE = [  # the edges that mean something: all legitimate
    "cnn.n_filters_3=0", "cnn.n_dense=0", "cnn.dropout_factor=0.0", "cnn.rnn_units=[]", "cnn.vocab_size=0",
    "training.validation=0.0", "training.patience=1", "training.momentum=1.0", "training.momentum=0",
    "training.decay=0", "training.n_epochs=1", "training.n_minibatch=1", "training.random_seed=0",
    "predicting.trim_coeff=0.0", "predicting.trim_coeff=0.49", "evaluating.map_k=1",
    "evaluating.threshold=-2.5", "dataset.window=0.1",
]


@pytest.mark.parametrize("override", IN_RANGE)
def test_edge_values_that_mean_something_are_accepted(experiments_dir, override):
    from tartarus.config.families import FAMILIES
    from tartarus.config.registry import parse_override
    (section, key), value = parse_override(override)
    if section == "cnn":  # on an architecture that reads the key: setting one it does not read is an error
        arch = next(a for a, family in FAMILIES.items() if key in family.keys())
        experiment_from_dict("edge", {"dataset": {"dataset": "X", "dim": 3}, "cnn": {"architecture": arch, key: value}})
    else:
        Registry(experiments_dir).experiment("tiny", [override])


ENTRY_OUT_OF_RANGE = [
    ("resample_sr", 0, "[1, inf)"), ("hop", 0, "[1, inf)"), ("n_fft", -2048, "[1, inf)"),
    ("n_mels", 0, "[1, inf)"), ("cqt_bins", 0, "[1, inf)"), ("bins_per_octave", 0, "[1, inf)"),
    ("fmin", 0.0, "(0, inf)"), ("top_db", -80.0, "[0, inf) (0 = no clipping)"),
    ("num_process", 0, "(-inf, inf) except 0 (-1 = every core, -2 all but one ...)"),
    ("npatches", 0, "[1, inf)"), ("window", -15.0, "(0, inf)"), ("seed", -1, "[0, inf)"),
    ("max_df", 0.0, "(0, 1]"), ("max_df", 1.5, "(0, 1]"), ("min_df", -1, "[0, inf)"),
    ("max_features", -1, "[0, inf) (0 = no limit)"), ("n_words", -1, "[0, inf) (0 = all)"),
    ("sequence_length", 0, "[1, inf)"), ("embedding_dim", 0, "[1, inf)"), ("w2v_epochs", 0, "[1, inf)"),
    ("d2v_dim", 0, "[1, inf)"),
]


@pytest.mark.parametrize("key,value,allowed", ENTRY_OUT_OF_RANGE, ids=lambda x: str(x))
def test_dataset_entry_out_of_range(tmp_path, key, value, allowed):
    toml = f'[MYDS]\naudio_folder = "audio"\n{key} = {value!r}\n'.replace("'", '"')
    (tmp_path / "datasets.toml").write_text(toml)
    with pytest.raises(ConfigError) as err:
        Registry(REPO / "experiments", data_root=tmp_path).dataset("MYDS")
    assert str(err.value) == f"dataset 'MYDS'.{key}: {value!r} is out of range; allowed: {allowed}"


def test_dataset_entry_edges_accepted():
    e = build_section(DatasetEntry, {"name": "X", "num_process": -1, "top_db": 0.0, "max_df": 1.0, "min_df": 0,
                                     "max_features": 0, "n_words": 0, "seed": 0}, "dataset 'X'")
    assert (e.num_process, e.max_df, e.n_words) == (-1, 1.0, 0)


def test_every_section_has_an_out_of_range_case():
    sections = {s for s, *_ in OUT_OF_RANGE} | ({"cnn"} if TUPLES else set())
    assert sections == set(EXPERIMENT_SECTIONS)
    assert {DatasetSection, TrainingSection, CnnSection, PredictingSection, EvaluatingSection} \
        == set(EXPERIMENT_SECTIONS.values())


# ------------------------------------------------------------------------- nothing is created
@pytest.mark.parametrize("override", ["training.n_epochs=-1", "training.n_minibatch=0",
                                      "training.learning_rate=-0.01", "training.patience=-1"])
def test_run_out_of_range_creates_no_model_folder(tiny_layout, experiments_dir, capsys, override):
    root = tiny_layout.root
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    rc = cli.main(["run", "tiny", "--set", override, "--data-dir", str(root), "--experiments", str(experiments_dir)])
    err = capsys.readouterr().err
    key, value = override.split("=")
    assert rc == 2
    assert err.startswith("tartarus: error: ") and f"{key}: {value} is out of range; allowed: " in err
    assert err.count("\n") == 1  # one line
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before
    layout = DataLayout(root)
    assert not layout.model_dir("model_1").exists() and not layout.trained_models().exists()


# ------------------------------------------------------------------------- command-line options
CLI_CASES = [
    (["factors", "X", "--dim", "0"], "--dim", "0", "[1, inf)"),
    (["factors", "X", "--seed", "-1"], "--seed", "-1", "[0, inf)"),
    (["interactions", "import", "f.tsv", "--dataset", "X", "--min-user", "0"], "--min-user", "0", "[1, inf)"),
    (["interactions", "import", "f.tsv", "--dataset", "X", "--min-item", "-2"], "--min-item", "-2", "[1, inf)"),
    (["text", "w2v", "X", "--epochs", "0"], "--epochs", "0", "[1, inf)"),
    (["text", "w2v", "X", "--sequence-length", "0"], "--sequence-length", "0", "[1, inf)"),
    (["text", "w2v", "X", "--embedding-dim", "-3"], "--embedding-dim", "-3", "[1, inf)"),
    (["text", "d2v", "X", "--dim", "0"], "--dim", "0", "[1, inf)"),
    (["text", "vsm", "X", "--max-df", "1.5"], "--max-df", "1.5", "(0, 1]"),
    (["text", "vsm", "X", "--min-df", "-1"], "--min-df", "-1", "[0, inf)"),
    (["text", "vsm", "X", "--max-features", "-1"], "--max-features", "-1", "[0, inf) (0 = no limit)"),
    (["text", "vsm", "X", "--n-words", "-1"], "--n-words", "-1", "[0, inf) (0 = all)"),
    (["text", "d2v", "X", "--seed", "-5"], "--seed", "-5", "[0, inf)"),
    (["recommend", "m", "q", "-n", "0"], "-n", "0", "[1, inf)"),
    (["playlist", "m", "s", "-n", "-1"], "-n", "-1", "[1, inf)"),
    (["playlist", "m", "s", "--threshold", "nan"], "--threshold", "nan", "(-inf, inf)"),
    (["similar", "m", "q", "-k", "0"], "-k", "0", "[1, inf)"),
    (["cluster", "X", "-k", "0"], "-k", "0", "[1, inf)"),
    (["cluster", "X", "--dim", "0"], "--dim", "0", "[1, inf)"),
    (["cluster", "X", "--top", "-1"], "--top", "-1", "[0, inf)"),
    (["cluster", "X", "--members", "-1"], "--members", "-1", "[0, inf)"),
    (["cluster", "X", "--seed", "-1"], "--seed", "-1", "[0, inf)"),
    (["interactions", "split", "--dataset", "X", "--fractions", "0.8", "-0.1", "0.3"], "--fractions", "-0.1",
     "[0, 1]"),
    (["interactions", "split", "--dataset", "X", "--seed", "-1"], "--seed", "-1", "[0, inf)"),
    (["patches", "X", "--npatches", "0"], "--npatches", "0", "[1, inf)"),
    (["patches", "X", "--window", "-1"], "--window", "-1.0", "(0, inf)"),
    (["patches", "X", "--seed", "-1"], "--seed", "-1", "[0, inf)"),
    (["spectrograms", "X", "-j", "0"], "-j/--jobs", "0", "(-inf, inf) except 0"),
    (["predict", "m", "--full-track", "--trim-coeff", "0.5"], "--trim-coeff", "0.5", "[0, 0.5)"),
    (["pipeline", "dummy", "--epochs", "0"], "--epochs", "0", "[1, inf)"),
    (["dummy-data", "--items", "0"], "--items", "0", "[1, inf)"),
    (["dummy-data", "--seed", "-1"], "--seed", "-1", "[0, inf)"),
    (["magna", "import", "a.csv", "mp3", "--fractions", "0.8", "0.1", "1.5"], "--fractions", "1.5", "[0, 1]"),
    (["magna", "import", "a.csv", "mp3", "--top-tags", "0"], "--top-tags", "0", "[1, inf)"),
    (["magna", "import", "a.csv", "mp3", "--min-tags", "-1"], "--min-tags", "-1", "[0, inf)"),
    (["magna", "import", "a.csv", "mp3", "--min-tag-count", "-1"], "--min-tag-count", "-1", "[0, inf)"),
    (["magna", "import", "a.csv", "mp3", "-j", "0"], "-j/--jobs", "0", "[1, inf)"),
]


@pytest.mark.parametrize("argv,option,value,allowed", CLI_CASES, ids=lambda x: " ".join(x) if isinstance(x, list) else None)
def test_cli_numeric_option_out_of_range(tmp_path, capsys, argv, option, value, allowed):
    with pytest.raises(SystemExit) as stop:
        cli.main([*argv, "--data-dir", str(tmp_path)])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: {value} is out of range; allowed: {allowed}" in err
    assert list(tmp_path.iterdir()) == []


def test_cli_option_not_a_number(capsys):
    with pytest.raises(SystemExit):
        cli.main(["factors", "X", "--dim", "ten"])
    assert "argument --dim: expected an integer, got 'ten'" in capsys.readouterr().err


def test_cli_options_in_range_parse():
    args = cli.build_parser().parse_args(["text", "vsm", "X", "--max-df", "1", "--n-words", "0", "--min-df", "0"])
    assert (args.max_df, args.n_words, args.min_df) == (1.0, 0, 0)
    args = cli.build_parser().parse_args(["spectrograms", "X", "-j", "-1"])
    assert args.n_jobs == -1


@pytest.mark.parametrize("param,message", [("iterations=0", "iterations must be an integer >= 1, got 0"),
                                           ("alpha=-1.0", "alpha must be a positive finite number, got -1.0"),
                                           ("regularization=-0.1", "regularization must be a non-negative finite number"),
                                           ("n_jobs=0", "n_jobs must be a non-zero integer"),
                                           ("num_threads=2", "unknown als parameter(s) num_threads"),
                                           ("fact='a b'", "fact must be a name of letters")])
def test_factor_parameters_checked_before_anything_is_read(tmp_path, capsys, param, message):
    rc = cli.main(["factors", "X", "--param", param, "--data-dir", str(tmp_path)])
    assert rc == 2 and message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_pmi_parameters_checked(tmp_path, capsys):
    rc = cli.main(["factors", "X", "--method", "pmi", "--param", "n_iter=-1", "--data-dir", str(tmp_path)])
    assert rc == 2 and "n_iter must be an integer >= 0, got -1" in capsys.readouterr().err
