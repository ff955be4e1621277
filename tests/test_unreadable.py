"""Every unreadable input is one line naming the file (issue 11, item 6), and the CLI starts quietly (item 9).

Each test damages one file of a small trained setup (the tiny dataset, one model trained for one
epoch), runs the command that reads it through ``main``, and restores the file.
"""

import contextlib
import os
import shutil
import subprocess

import numpy as np
import pytest

from tartarus import fileio
from tartarus.cli import main
from tartarus.errors import DataMismatch
from tartarus.quiet import filter_log, quiet_backend
from tests.conftest import REPO, TINY_EXPERIMENTS, write_tiny_dataset

NOT_UTF8 = "id\u00e9\n".encode("latin-1")  # a Latin-1 é: byte 0xe9 starts no valid UTF-8 sequence here


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """(data layout, experiments folder) with model_1 trained (1 epoch) and evaluated on TINY."""
    tmp = tmp_path_factory.mktemp("unreadable")
    experiments = tmp / "experiments"
    experiments.mkdir()
    (experiments / "tiny.toml").write_text(TINY_EXPERIMENTS)
    shutil.copy(REPO / "experiments" / "datasets.toml", experiments / "datasets.toml")
    layout = write_tiny_dataset(tmp / "data")
    assert main(["run", "tiny", "--experiments", str(experiments), "--data-dir", str(layout.root),
                 "--set", "training.n_epochs=1"]) == 0
    return layout, experiments


@contextlib.contextmanager
def damaged(path, data):
    """``path`` holds ``data`` (bytes) for the block, then its old content again."""
    old = path.read_bytes()
    try:
        path.write_bytes(data)
        yield path
    finally:
        path.write_bytes(old)


def one_line_error(capsys, argv, path):
    """Run the CLI; assert a non-zero exit and one error line naming ``path``; return that line."""
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("tartarus: error:")]
    assert code != 0, err
    assert "Traceback" not in err, err
    assert len(lines) == 1 and str(path) in lines[0], err
    return lines[0]


def npy_bytes(array, **kwargs):
    import io
    buf = io.BytesIO()
    np.save(buf, array, **kwargs)
    return buf.getvalue()


def test_pickled_npy_is_refused_not_loaded(setup, capsys):
    layout, _ = setup
    y = layout.y("test", "class", 3, "TINY")
    with damaged(y, npy_bytes(np.array([{"a": 1}] * 3, dtype=object), allow_pickle=True)):
        line = one_line_error(capsys, ["evaluate", "model_1", "--data-dir", layout.root], y)
    assert "pickled Python objects" in line


@pytest.mark.parametrize("cut", [0, 50, -40])
def test_truncated_npy(setup, capsys, cut):
    layout, _ = setup
    y = layout.y("test", "class", 3, "TINY")
    data = y.read_bytes()
    with damaged(y, data[:cut] if cut >= 0 else data[:len(data) + cut]):
        line = one_line_error(capsys, ["evaluate", "model_1", "--data-dir", layout.root], y)
    assert "empty or truncated" in line


@pytest.mark.parametrize("set_", ["train", "val", "test"])
def test_nan_in_a_target_names_the_file(setup, capsys, set_):
    layout, _ = setup
    y = layout.y(set_, "class", 3, "TINY")
    values = np.load(y)
    values[-1, 0] = np.nan
    with damaged(y, npy_bytes(values)):
        line = one_line_error(capsys, ["evaluate", "model_1", "-s", set_, "--data-dir", layout.root], y)
    assert "NaN or infinite" in line and f"row {len(values) - 1}" in line


def test_corrupt_config_json(setup, capsys):
    layout, _ = setup
    config = layout.model_config("model_1")
    with damaged(config, config.read_bytes()[:-30]):
        line = one_line_error(capsys, ["predict", "model_1", "--data-dir", layout.root], config)
    assert "not valid JSON" in line


@pytest.mark.parametrize("cut", [0, 0.5])
def test_truncated_model_keras(setup, capsys, cut):
    layout, _ = setup
    model = layout.model_file("model_1")
    data = model.read_bytes()
    with damaged(model, data[:int(len(data) * cut)]):
        line = one_line_error(capsys, ["predict", "model_1", "--data-dir", layout.root], model)
    assert "empty, truncated" in line and "File not found" not in line


def test_safe_mode_refusal_names_the_file_and_the_code(setup, capsys, tmp_path):
    import keras
    layout, _ = setup
    inputs = keras.Input((3,))
    lambda_model = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs))
    lambda_model.save(tmp_path / "lambda.keras")
    model = layout.model_file("model_1")
    with damaged(model, (tmp_path / "lambda.keras").read_bytes()):
        line = one_line_error(capsys, ["predict", "model_1", "--data-dir", layout.root], model)
    assert "holds Python code (a Lambda layer)" in line and "safe mode" in line


@pytest.mark.parametrize("cut", [0, 0.5])
def test_empty_or_truncated_hdf5(setup, capsys, cut):
    layout, _ = setup
    patches = layout.patches("test", "TINY", 2, 1)
    data = patches.read_bytes()
    with damaged(patches, data[:int(len(data) * cut)]):
        line = one_line_error(capsys, ["predict", "model_1", "-s", "test", "--data-dir", layout.root], patches)
    assert "cannot read it as a patches file" in line


def test_hdf5_without_the_datasets(setup, capsys, tmp_path):
    import h5py
    layout, _ = setup
    with h5py.File(tmp_path / "empty.hdf5", "w"):
        pass
    patches = layout.patches("test", "TINY", 2, 1)
    with damaged(patches, (tmp_path / "empty.hdf5").read_bytes()):
        one_line_error(capsys, ["predict", "model_1", "-s", "test", "--data-dir", layout.root], patches)


def test_non_utf8_index(setup, capsys):
    layout, _ = setup
    index = layout.items_index("test", "TINY")
    with damaged(index, index.read_bytes() + NOT_UTF8):
        line = one_line_error(capsys, ["evaluate", "model_1", "--data-dir", layout.root], index)
    assert "not UTF-8 text (byte 0xe9" in line


def test_truncated_npz(setup, capsys, tmp_path):
    layout, _ = setup
    triplets = tmp_path / "plays.tsv"
    ids = fileio.read_lines(layout.items_index("train", "TINY"))
    triplets.write_text("".join(f"u{u}\t{item}\t{1 + (u + i) % 3}\n" for u in range(4)
                                for i, item in enumerate(ids) if (u + i) % 2 == 0))
    assert main(["interactions", "import", str(triplets), "--dataset", "TINY", "--data-dir", str(layout.root)]) == 0
    capsys.readouterr()
    matrix = layout.interactions_matrix("TINY")
    with damaged(matrix, matrix.read_bytes()[:100]):
        line = one_line_error(capsys, ["factors", "TINY", "--dim", 2, "--data-dir", layout.root], matrix)
    assert "sparse matrix (.npz)" in line


def test_non_utf8_toml(setup, capsys, tmp_path):
    """`list` lists the readable files' entries and warns about the bad one; other commands refuse."""
    layout, experiments = setup
    folder = tmp_path / "experiments"
    shutil.copytree(experiments, folder)
    bad = folder / "bad.toml"
    bad.write_bytes(b'[other]\ndescription = "' + NOT_UTF8 + b'"\n')
    assert main(["list", "--experiments", str(folder)]) == 0
    captured = capsys.readouterr()
    assert "tiny" in captured.out and "SUPER" in captured.out
    warnings = [line for line in captured.err.splitlines() if "tartarus: warning:" in line]
    assert len(warnings) == 1 and str(bad) in warnings[0] and "not UTF-8" in warnings[0]
    line = one_line_error(capsys, ["show", "tiny", "--experiments", folder], bad)
    assert "not UTF-8 text (byte 0xe9" in line
    # the data root's own datasets.toml likewise
    own = layout.root / "datasets.toml"
    own.write_bytes(NOT_UTF8)
    try:
        one_line_error(capsys, ["show", "tiny", "--experiments", experiments, "--data-dir", layout.root], own)
    finally:
        own.unlink()


def test_library_readers_name_the_file(tmp_path):
    path = tmp_path / "x.npy"
    path.write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(DataMismatch, match=r"x.npy: cannot read it as a .npy array"):
        fileio.load_npy(path)
    path = tmp_path / "x.json"
    path.write_text('{"a": ')
    with pytest.raises(DataMismatch, match=r"x.json: cannot read it as JSON: not valid JSON \(Expecting value "
                                           r"at line 1, column 7\)"):
        fileio.read_json(path)


# ------------------------------------------------------------------------------ quiet start-up
SAMPLE = """\
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1796183467.067552   22583 port.cc:153] oneDNN custom operations are on.
I0000 00:00:1796183467.068104   22583 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.
I0000 00:00:1796183467.179549   22583 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use ...
To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow.
/venv/lib/python3.11/site-packages/x.py:3: UserWarning: a Python warning
E0000 00:00:1796183472.980392   22583 cuda_platform.cc:52] failed call to cuInit: UNKNOWN ERROR (303)
E0000 00:00:1796183472.990000   22583 some_op.cc:12] a real error
"""


def test_filter_log():
    assert filter_log(SAMPLE) == ("/venv/lib/python3.11/site-packages/x.py:3: UserWarning: a Python warning\n"
                                  "E0000 00:00:1796183472.990000   22583 some_op.cc:12] a real error\n")
    # a GPU asked for: the probe's lines stay, whatever their level
    kept = filter_log(SAMPLE, keep_probe=True).splitlines()
    assert [line.split("] ")[0].split()[-1] for line in kept if "] " in line] == [
        "cudart_stub.cc:31", "cuda_platform.cc:52", "some_op.cc:12"]
    assert filter_log(SAMPLE, min_level=3) == "/venv/lib/python3.11/site-packages/x.py:3: UserWarning: a Python warning\n"
    assert filter_log(SAMPLE, min_level=0, keep_probe=True) == SAMPLE


def test_quiet_backend_honours_the_user(monkeypatch):
    import sys

    import tensorflow  # noqa: F401

    def installed():
        return [f for f in sys.meta_path if type(f).__name__ == "_QuietTensorFlow"]

    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    monkeypatch.delenv("TARTARUS_VERBOSE", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    undo = quiet_backend()  # TensorFlow is loaded in this process already: nothing to do
    assert not installed() and "TF_CPP_MIN_LOG_LEVEL" not in os.environ
    undo()
    monkeypatch.delitem(sys.modules, "tensorflow")  # as in a fresh CLI process (restored after the test)
    undo = quiet_backend()
    try:
        assert len(installed()) == 1 and os.environ["TF_CPP_MIN_LOG_LEVEL"] == "2"
        assert installed()[0].gpu_devices == "0"  # a GPU asked for: one line if TensorFlow finds none
    finally:
        undo()
    assert not installed() and "TF_CPP_MIN_LOG_LEVEL" not in os.environ
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0"  # no device hidden
    for env in ({"TARTARUS_VERBOSE": "1"}, {"TF_CPP_MIN_LOG_LEVEL": "0"}):
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        undo = quiet_backend()
        assert not installed()
        undo()
        for key in env:
            monkeypatch.delenv(key)
    undo = quiet_backend(verbose=True)  # --verbose
    assert not installed()
    undo()


NOISE = ("Could not find cuda drivers", "cuInit", "absl::InitializeLog", "oneDNN custom operations",
         "cpu_feature_guard")


def console(*argv, env=None):
    script = REPO / ".venv" / "bin" / "tartarus"
    if not script.exists():
        pytest.skip(f"no console script at {script} (make install)")
    base = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TARTARUS_VERBOSE")}
    return subprocess.run([str(script), *map(str, argv)], capture_output=True, text=True,
                          env={**base, **(env or {})}, cwd=REPO, timeout=600)


def test_console_script_starts_quietly(tmp_path):
    experiments = tmp_path / "experiments"
    experiments.mkdir()
    (experiments / "tiny.toml").write_text(TINY_EXPERIMENTS)
    shutil.copy(REPO / "experiments" / "datasets.toml", experiments / "datasets.toml")
    layout = write_tiny_dataset(tmp_path / "data")
    out = console("list", "--experiments", experiments)
    assert out.returncode == 0 and not any(n in out.stderr for n in NOISE), out.stderr
    out = console("run", "tiny", "--experiments", experiments, "--data-dir", layout.root,
                  "--set", "training.n_epochs=1", "--no-eval")
    assert out.returncode == 0, out.stderr
    assert not any(n in out.stderr for n in NOISE), out.stderr
