"""An items index listing an id twice is refused by every reader, in one line, before any output."""

import json

import pytest

from tartarus.cli import main
from tartarus.config import Registry
from tartarus.datasets.dummy import generate_dummy
from tartarus.errors import DataMismatch
from tartarus.fileio import read_items_index
from tartarus.layout import DataLayout
from tests.conftest import cli_error_line


def _duplicate(path, item, after):
    """Insert ``item`` again after line ``after`` (1-based) of an items index; return its lines."""
    lines = path.read_text(encoding="utf-8").splitlines()
    lines.insert(after, item)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return lines


def test_reader_names_file_first_duplicate_and_its_lines(tmp_path):
    path = tmp_path / "items_index_train_X.tsv"
    path.write_text("a\nb\n\nc\nb\na\nb\n", encoding="utf-8")  # b on lines 2, 5, 7; a on 1, 6
    with pytest.raises(DataMismatch) as exc:
        read_items_index(path)
    msg = str(exc.value)
    assert "\n" not in msg and str(path) in msg
    assert "'b'" in msg and "lines 2, 5, 7" in msg and "3 repeated line(s)" in msg  # b repeats first
    path.write_text("\ufeffa\r\nb\r\n\r\nc\r\n", encoding="utf-8")  # BOM, CRLF and a blank line: fine
    assert read_items_index(path) == ["a", "b", "c"]


@pytest.fixture
def dummy(tmp_path):
    """The dummy dataset with its first train item listed a second time, on line 31."""
    generate_dummy(tmp_path / "d", clip_seconds=0.5)
    layout = DataLayout(tmp_path / "d")
    index = layout.items_index("train", "DUMMY")
    first = index.read_text().split()[0]
    _duplicate(index, first, 30)
    return layout, index, f"{first!r}", "lines 1, 31"


def _spectrogram_stand_in(layout):
    """What ``patches`` checks before it reads the split: the folder and its matching params."""
    entry = Registry().dataset("DUMMY")
    layout.spectrograms_dir("DUMMY").mkdir(parents=True)
    layout.spectrogram_params("DUMMY").write_text(json.dumps(entry.spectrogram_params()))


COMMANDS = {
    "patches": (["patches", "DUMMY"], _spectrogram_stand_in),
    "text vsm": (["text", "vsm", "DUMMY"], None),
    "text w2v": (["text", "w2v", "DUMMY"], None),
    "text d2v": (["text", "d2v", "DUMMY", "--dim", "4"], None),
    "factors": (["factors", "DUMMY", "--dim", "4"], None),
    "run": (["run", "dummy_text_als", "bow", "--set", "training.n_epochs=1"], None),
}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_reader_refuses_a_duplicate_id_in_one_line(name, dummy, capsys):
    layout, index, item, lines = dummy
    argv, prepare = COMMANDS[name]
    if prepare:
        prepare(layout)
    before = sorted(p.relative_to(layout.root) for p in layout.root.rglob("*"))
    assert main([*argv, "--data-dir", str(layout.root)]) == 2
    err = cli_error_line(capsys)
    assert str(index) in err and item in err and lines in err, err
    # refused before writing anything: no model folder, no feature, target or held-out matrix (factors
    # may first import index/interactions_DUMMY.tsv, which does not depend on the split)
    after = sorted(p.relative_to(layout.root) for p in layout.root.rglob("*"))
    assert [p for p in after if p.parent.name != "splits" or not p.name.startswith("interactions_")] == before
    assert not (layout.models_dir.exists() and any(layout.models_dir.iterdir()))


def test_run_refuses_before_allocating_a_model(experiments_dir, tiny_layout, capsys):
    """The audio path (patches input) of ``run`` too: no orphan models/model_N, no traceback."""
    index = tiny_layout.items_index("val", "TINY")
    _duplicate(index, index.read_text().split()[0], 1)
    test_index = tiny_layout.items_index("test", "TINY")  # read before training too, though used after it
    _duplicate(test_index, test_index.read_text().split()[0], 1)
    code = main(["run", "tiny", "--experiments", str(experiments_dir), "--data-dir", str(tiny_layout.root)])
    err = cli_error_line(capsys)
    assert code == 2 and str(index) in err and "lines 1, 2" in err, err
    assert not tiny_layout.models_dir.exists() or not any(tiny_layout.models_dir.glob("model_*"))
    index.write_text("\n".join(dict.fromkeys(index.read_text().split())) + "\n")
    assert main(["run", "tiny", "--experiments", str(experiments_dir), "--data-dir", str(tiny_layout.root)]) == 2
    err = cli_error_line(capsys)
    assert str(test_index) in err and "lines 1, 2" in err, err
    assert not tiny_layout.models_dir.exists() or not any(tiny_layout.models_dir.glob("model_*"))
