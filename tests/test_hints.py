"""Every command line the library prints as a hint parses with the real parser (issue 12, item 5).

Hints are built with ``DataLayout.cli(*args)``. The static test reads every such call in
``src/tartarus`` (AST), fills the arguments it cannot know (a dataset name, a model id, a number)
with values the option accepts, and parses the line with :func:`tartarus.cli.parse_command_line`:
a subcommand, flag or positional that does not exist, or one missing, fails here. The builders
that assemble their arguments at run time (``factors_command`` ...) are called for real.
Commands quoted in prose (```tartarus text d2v```) are held to their subcommand and flags.
"""

import ast
import itertools
import re
from pathlib import Path

import pytest

from tartarus import cli
from tartarus.layout import DataLayout

SRC = Path(cli.__file__).parent
PARSER = cli.build_parser()
SUBPARSERS = next(a for a in PARSER._actions if a.dest == "command").choices
UNKNOWN = object()  # an argument the static scan cannot evaluate


def _literal(node):
    """The text of ``node`` if it is a constant (or an f-string of constants), else UNKNOWN."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float)):
        return str(node.value)
    if isinstance(node, ast.JoinedStr) and all(isinstance(v, ast.Constant) for v in node.values):
        return "".join(str(v.value) for v in node.values)
    return UNKNOWN


def cli_calls():
    """``(file:line, function, [text or UNKNOWN, ...])`` of every ``<layout>.cli(...)`` call in the
    package, ``function`` the one it is in. A ``*options`` tail (extra flags a builder passes on)
    is left out: the line must parse without them; ``[]`` when the call is all ``*args``."""
    out = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        owner = {}
        for func in ast.walk(tree):
            if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(func):
                    owner[id(node)] = func.name  # the innermost wins: ast.walk goes outside in
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "cli":
                args = [_literal(a) for a in node.args if not isinstance(a, ast.Starred)]
                out.append((f"{path.relative_to(SRC)}:{node.lineno}", owner.get(id(node)), args))
    return out


def _candidates(subcommand):
    """Values to try for an argument the scan cannot evaluate: names, numbers, and every choice
    the subcommand offers (a positional such as ``text``'s kind takes only those)."""
    values = ["DS", "1", "0.5"]
    sub = SUBPARSERS.get(subcommand)
    for action in (sub._actions if sub else ()):
        values += [str(c) for c in (action.choices or ())]
    return list(dict.fromkeys(values))


def parses(args, layout=DataLayout("data")):
    """The first filling of the UNKNOWN slots of ``args`` that parses, or the last error."""
    slots = [i for i, a in enumerate(args) if a is UNKNOWN]
    error = None
    for filling in itertools.product(_candidates(args[0] if args and args[0] is not UNKNOWN else None),
                                     repeat=len(slots)):
        words = list(args)
        for i, value in zip(slots, filling):
            words[i] = value
        try:
            cli.parse_command_line(layout.cli(*words), PARSER)
            return None
        except ValueError as exc:
            error = exc
    return error


CALLS = cli_calls()
BUILT_AT_RUN_TIME = {"factors_command"}  # their whole argument list is computed: called for real below


def test_the_scan_finds_the_hints():
    # a scan that finds nothing would pass every hint: the package builds some 30 of them
    assert len(CALLS) >= 20, CALLS
    unchecked = {(where, func) for where, func, args in CALLS if not args and func not in BUILT_AT_RUN_TIME}
    assert not unchecked, f"hints built from *args only: call their builders in a test here: {unchecked}"


@pytest.mark.parametrize("where,args", [(w, a) for w, _, a in CALLS if a], ids=[w for w, _, a in CALLS if a])
def test_every_hint_parses(where, args):
    assert args[0] is not UNKNOWN, f"{where}: the subcommand of a hint must be spelled in place"
    error = parses(args)
    assert error is None, f"{where}: {error}"


def test_parse_command_line_refuses_wrong_lines():
    for line in ("tartarus factors split --dataset DS --random",  # the hint issue 12 found
                 "tartarus spectrograms",  # missing its dataset
                 "tartarus nonsense DS",
                 "python -m tartarus list",
                 "tartarus factors DS --param alpha"):  # a --param without its value
        with pytest.raises(ValueError, match="does not"):
            cli.parse_command_line(line, PARSER)
    assert cli.parse_command_line("tartarus patches DS --npatches 8 --window 1.5", PARSER).npatches == 8


def test_hints_carry_the_data_root_quoted(tmp_path):
    root = tmp_path / "my data"  # a space: the printed line must still run as one argument
    layout = DataLayout(root)
    args = cli.parse_command_line(layout.cli("spectrograms", "DS", "--overwrite"), PARSER)
    assert (args.command, args.dataset, args.overwrite, args.data_dir) == ("spectrograms", "DS", True, str(root))
    assert DataLayout("data").cli("models") == "tartarus models"


@pytest.mark.parametrize("params", [
    {"method": "als", "dim": 200},
    {"method": "als", "dim": 4, "seed": 3, "params": {"iterations": 2, "targets_all_items": True}},
    {"method": "pmi", "dim": 8, "fact": "pmi_class", "params": {"pmi_source": "class"}},
])
def test_factors_command_parses_and_round_trips(params, tmp_path):
    from tartarus.factors import factors_command
    line = factors_command(DataLayout(tmp_path), "DS", params)
    args = cli.parse_command_line(line, PARSER)
    assert (args.dataset, args.method, args.dim, args.seed) == ("DS", params["method"], params["dim"],
                                                                 params.get("seed", 0))
    given = dict(cli.parse_param(p) for p in args.param)
    for key, value in given.items():  # what the line passes is what the params held
        assert (params.get("params") or {}).get(key, params.get(key)) == value, (key, value)


def test_run_time_built_hints_parse(tmp_path):
    from tartarus.inputs import input_command
    from tartarus.store import resume_command
    layout = DataLayout(tmp_path)
    for suffix in ("bow", "w2v", "model_1-pred_9", "model_12-pred_pooled"):
        line = input_command(layout, suffix, "DS", "val")
        assert line and cli.parse_command_line(line, PARSER), suffix
    assert cli.parse_command_line(resume_command(layout, "model_3"), PARSER).resume == "model_3"
    # builders that pass extra flags on
    from tartarus.interactions import import_command
    from tartarus.splits import split_command
    for line in (import_command(layout, "DS", "--overwrite"), split_command(layout, "DS", "--overwrite")):
        args = cli.parse_command_line(line, PARSER)
        assert (args.dataset, args.overwrite) == ("DS", True), line


def _strings(path):
    """``(text, line)`` of every string of a module, an f-string whole with its fields as ``{}``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parts = {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for v in node.values}
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            yield "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values), node.lineno
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in parts:
            yield node.value, node.lineno


def _prose_commands():
    """``(file:line, words)`` of each `tartarus ...` quoted in a message (single backticks),
    an f-string's fields as ``{}``."""
    out = []
    for path in sorted(SRC.rglob("*.py")):
        for text, lineno in _strings(path):
            for match in re.finditer(r"(?<!`)`tartarus ([^`]+)`(?!`)", text):
                out.append((f"{path.relative_to(SRC)}:{lineno}", match.group(1).split()))
    return out


@pytest.mark.parametrize("where,words", _prose_commands(), ids=[w for w, _ in _prose_commands()])
def test_commands_quoted_in_messages_exist(where, words):
    assert words[0] in SUBPARSERS, f"{where}: no subcommand {words[0]!r}"
    sub = SUBPARSERS[words[0]]
    for word in words[1:]:
        if word.startswith("-"):
            assert word.split("=")[0] in sub._option_string_actions, f"{where}: {words[0]} has no {word}"


def test_missing_input_calls_only_a_command_a_command(tmp_path):
    from tartarus.errors import MissingInput
    line = DataLayout(tmp_path).cli("spectrograms", "DS")
    assert f"(make it with: {line})" in str(MissingInput(tmp_path / "x", line))
    advice = "nothing to resume: this model has no epoch checkpoint"
    text = str(MissingInput(tmp_path / "x", advice, what="checkpoint of model_1"))
    assert text == f"missing checkpoint of model_1: {tmp_path / 'x'} ({advice})"


def _command_strings():
    """``(file:line, text)`` of every string in the package that is itself a command line (it
    starts with ``tartarus ``), an f-string's fields as ``{}``."""
    out = []
    for path in sorted(SRC.rglob("*.py")):
        for text, lineno in _strings(path):
            if text.startswith("tartarus ") and text.strip() != "tartarus":
                out.append((f"{path.relative_to(SRC)}:{lineno}", text))
    return out


@pytest.mark.parametrize("where,text", _command_strings(), ids=[w for w, _ in _command_strings()])
def test_command_strings_parse(where, text):
    # spelled by hand instead of with DataLayout.cli: held to the same parser, fields filled as above
    words = text.split()[1:]
    args = [UNKNOWN if "{}" in w else w for w in words]
    error = parses(args)
    assert error is None, f"{where}: {error}"


@pytest.mark.parametrize("name", ["NEWDS", "my set"])
def test_the_dataset_entry_a_hint_suggests_is_accepted(tmp_path, name):
    # `tartarus spectrograms` on an undeclared dataset suggests one TOML line: written as told, it works
    from tartarus.config import Registry
    from tartarus.errors import ConfigError
    experiments = Path(__file__).resolve().parents[1] / "experiments"
    with pytest.raises(ConfigError, match="e.g. the line: ") as err:
        Registry(experiments, data_root=tmp_path).dataset(name)
    line = str(err.value).split("e.g. the line: ", 1)[1]
    DataLayout(tmp_path).datasets_file().write_text(line + "\n", encoding="utf-8")
    entry = Registry(experiments, data_root=tmp_path).dataset(name)
    assert (entry.name, entry.spectrogram_type, entry.audio_folder) == (name, "mel", "audio")
