"""Output side of the disk: a full disk is reported as such, files get the umask's mode, no temporary is left.

The full-disk tests mount a small tmpfs (we may be root in the test container) and skip where mounting
is not allowed.
"""

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from tartarus import fileio
from tartarus.audio import patches, runner
from tartarus.cli import main
from tartarus.config import Registry
from tartarus.datasets import generate_dummy
from tartarus.errors import OutputError
from tartarus.layout import DataLayout

from .conftest import REPO

SMALL = dict(n_items=15, n_users=20, clip_seconds=2.0)
EXPERIMENTS = str(REPO / "experiments")
TEMP = re.compile(r"^\..+\.tmp(\..*)?$")


@pytest.fixture
def small_fs(tmp_path):
    """A function ``mount(size)`` that mounts a tmpfs of ``size`` (e.g. "20m") and returns its folder."""
    mounted = []

    def mount(size):
        folder = tmp_path / f"fs{len(mounted)}"
        folder.mkdir()
        out = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                             capture_output=True, text=True)
        if out.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs here ({out.stderr.strip() or 'mount failed'})")
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        if subprocess.run(["umount", str(folder)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def fill(folder, leave):
    """Fill ``folder``'s file system up to ``leave`` free bytes with a ballast file; returns it."""
    st = os.statvfs(folder)
    ballast = Path(folder) / "ballast"
    with open(ballast, "wb") as f:
        f.write(b"\0" * max(0, st.f_bavail * st.f_frsize - leave))
    return ballast


def temps(root):
    return sorted(p for p in Path(root).rglob(".*") if TEMP.match(p.name))


def one_error_line(capsys, path_part):
    """The command's stderr: exactly one line, the full-disk error naming a file under ``path_part``."""
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    errors = [line for line in err if line.startswith("tartarus: error:")]
    assert len(errors) == 1 and not any("Traceback" in line for line in err), err
    assert re.search(r"no space left on device writing \S*" + re.escape(path_part), errors[0]), errors[0]
    return errors[0]


def test_dummy_data_full_disk(small_fs, capsys):
    fs = small_fs("4m")  # 15 clips of 20 s (0.9 MB each) do not fit
    root = fs / "data"
    args = ["dummy-data", "--items", "15", "--data-dir", str(root)]
    assert main(args) == 2
    one_error_line(capsys, str(root / "audio"))  # not "System error."
    assert temps(fs) == []
    subprocess.run(["mount", "-o", "remount,size=40m", str(fs)], check=True)  # free space
    assert main(args) == 0
    layout = DataLayout(root)
    assert len(fileio.read_lines(layout.items_index("train", "DUMMY"))) > 0
    assert len(list(layout.audio_dir.glob("*.wav"))) == 15
    assert temps(fs) == []


@pytest.fixture
def dummy_on_small_fs(small_fs):
    fs = small_fs("20m")
    root = fs / "data"
    generate_dummy(root, **SMALL)
    return fs, DataLayout(root)


def test_spectrograms_full_disk_blames_no_audio_file(dummy_on_small_fs, capsys):
    fs, layout = dummy_on_small_fs
    ballast = fill(fs, 100_000)  # room for a few 16 kB spectrograms, not 15
    args = ["spectrograms", "DUMMY", "-j", "2", "--data-dir", str(layout.root), "--experiments", EXPERIMENTS]
    assert main(args) == 2  # from a worker process
    one_error_line(capsys, str(layout.spectrograms_dir("DUMMY")))
    errors = layout.spectrogram_errors("DUMMY")
    assert not errors.exists() or "D0" not in errors.read_text()
    assert len(list(layout.spectrograms_dir("DUMMY").glob("*.npy"))) < 15
    ballast.unlink()
    assert main(args) == 0
    assert len(list(layout.spectrograms_dir("DUMMY").glob("*.npy"))) == 15
    assert not errors.exists()
    assert temps(fs) == []


@pytest.mark.parametrize("leave", [4096, 500_000])
def test_patches_full_disk(dummy_on_small_fs, capsys, leave):
    fs, layout = dummy_on_small_fs
    entry = Registry(EXPERIMENTS).dataset("DUMMY")
    runner.compute_spectrograms(layout, entry, n_jobs=1, progress=False)
    ballast = fill(fs, leave)  # the train file needs about 1.1 MB
    args = ["patches", "DUMMY", "--data-dir", str(layout.root), "--experiments", EXPERIMENTS]
    assert main(args) == 2  # and no segmentation fault of HDF5 afterwards (this process goes on)
    one_error_line(capsys, str(layout.root / "patches"))
    assert temps(fs) == []
    ballast.unlink()
    assert main(args) == 0
    out = layout.patches("train", "DUMMY", entry.npatches, entry.window)
    with h5py.File(out, "r") as f:
        assert f["features"].shape[0] == len(fileio.read_lines(layout.items_index("train", "DUMMY")))
        assert np.isfinite(f["features"][:]).all()
    assert temps(fs) == []


def test_run_full_disk_leaves_a_resumable_model(dummy_on_small_fs, capsys):
    fs, layout = dummy_on_small_fs
    entry = Registry(EXPERIMENTS).dataset("DUMMY")
    runner.compute_spectrograms(layout, entry, n_jobs=1, progress=False)
    patches.create_patches(layout, entry)
    common = ["--data-dir", str(layout.root), "--experiments", EXPERIMENTS]
    ballast = fill(fs, 2_300_000)  # the first epoch's checkpoint fits, the second's does not
    assert main(["run", "dummy_audio", "--set", "training.n_epochs=3"] + common) == 2
    line = one_error_line(capsys, str(layout.model_dir("model_1")))
    assert not layout.trained_models().exists() or "model_1" not in layout.trained_models().read_text()
    ballast.unlink()
    if layout.checkpoint("model_1").exists():  # the expected case: resume it
        assert "--resume model_1" in line
        assert main(["run", "-", "--resume", "model_1"] + common) == 0
        model = "model_1"
    else:  # no epoch was saved: a new run completes
        assert "--clean" in line
        assert main(["run", "dummy_audio", "--set", "training.n_epochs=3"] + common) == 0
        model = "model_2"
    rows = [r for r in fileio.read_tsv(layout.trained_models())[1:]]
    assert [r[0] for r in rows] == [model] and rows[0][4] == "3"
    assert layout.model_file(model).exists() and layout.training_curve(model).exists()
    assert temps(fs) == []


def test_output_error_is_one_plain_line_and_crosses_processes():
    import errno
    import pickle
    err = pickle.loads(pickle.dumps(OutputError("/x/y.npy", errno.ENOSPC)))
    assert isinstance(err, OutputError) and err.path == "/x/y.npy" and err.code == errno.ENOSPC
    assert str(err).startswith("no space left on device writing /x/y.npy")
    assert "\n" not in str(err)
    assert str(OutputError("/x", errno.EROFS)) == "read-only file system: cannot write /x"
    assert "resume" in str(err.with_hint("resume: tartarus run - --resume model_1"))


def test_output_error_recognises_libraries_without_errno(tmp_path):
    import errno
    target = tmp_path / "a.hdf5"
    h5_message = RuntimeError("Can't write data (file write failed: ..., errno = 28, error message = "
                              "'No space left on device')")
    assert fileio.output_error(h5_message, target).code == errno.ENOSPC
    assert fileio.output_error(OSError(errno.EDQUOT, "Disk quota exceeded"), target).code == errno.EDQUOT
    # a permission error about another file (an input read on the way) is not the output's
    assert fileio.output_error(PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "in.npy")),
                               target) is None
    assert fileio.output_error(PermissionError(errno.EACCES, "Permission denied", str(target)),
                               target).code == errno.EACCES
    assert fileio.output_error(ValueError("bad value"), target) is None  # tmp_path is not full


# ------------------------------------------------------------------------------------- umask
def _modes(paths):
    return {p: p.stat().st_mode & 0o777 for p in paths}


@pytest.mark.parametrize("mask", [0o022, 0o002])
def test_outputs_get_the_umask_mode(tmp_path, mask, experiments_dir):
    from tartarus.pipeline import run_experiment as run
    from .conftest import write_tiny_dataset

    old = os.umask(mask)
    try:
        root = tmp_path / "data"
        layout = DataLayout(root)
        generate_dummy(root, **SMALL)
        entry = Registry(EXPERIMENTS).dataset("DUMMY")
        runner.compute_spectrograms(layout, entry, n_jobs=1, progress=False)
        patches.create_patches(layout, entry)
        tiny = write_tiny_dataset(tmp_path / "tiny")
        result = run(Registry(experiments_dir).experiment("tiny", ["training.n_epochs=1"]), (), tiny, verbose=0,
                     evaluate=False)
    finally:
        os.umask(old)
    files = [layout.spectrogram("DUMMY", "D001"), layout.spectrogram_params("DUMMY"),
             layout.patches("train", "DUMMY", entry.npatches, entry.window), layout.audio_index("DUMMY"),
             layout.y("train", "class", 3, "DUMMY"), layout.audio_dir / "D001.wav",
             tiny.model_file(result.model_id), tiny.model_config(result.model_id),
             tiny.checkpoint(result.model_id), tiny.trained_models(), tiny.training_curve(result.model_id)]
    assert _modes(files) == {p: 0o666 & ~mask for p in files}
    folders = [layout.spectrograms_dir("DUMMY"), layout.audio_dir, tiny.model_dir(result.model_id),
               tiny.models_dir]
    assert _modes(folders) == {p: 0o777 & ~mask for p in folders}
    assert temps(tmp_path) == []  # a successful run leaves no temporary file


# --------------------------------------------------------------------------------- leftovers
def killed_writer(target, suffix=None):
    """Leave the temporary file of ``target`` as a writer killed mid-write does; returns its path."""
    script = ("import os, signal, sys\nfrom tartarus import fileio\n"
              f"cm = fileio.atomic_path({str(target)!r}, suffix={suffix!r})\n"
              "tmp = cm.__enter__()\ntmp.write_bytes(b'half written')\nprint(tmp, flush=True)\n"
              "os.kill(os.getpid(), signal.SIGKILL)\n")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert out.returncode == -signal.SIGKILL, out.stderr
    tmp = Path(out.stdout.strip())
    assert tmp.exists() and TEMP.match(tmp.name)
    return tmp


def test_killed_runs_temporaries_are_removed_by_the_next_run(tmp_path, experiments_dir):
    from tartarus.pipeline import run_experiment as run
    from .conftest import write_tiny_dataset

    root = tmp_path / "data"
    layout = DataLayout(root)
    generate_dummy(root, **SMALL)
    entry = Registry(EXPERIMENTS).dataset("DUMMY")
    runner.compute_spectrograms(layout, entry, n_jobs=1, progress=False)
    patch_file = layout.patches("train", "DUMMY", entry.npatches, entry.window)
    stale = [killed_writer(patch_file),  # .patches_train_DUMMY_1x15.hdf5.HOST-PID.XXXXXXXX.tmp.hdf5
             killed_writer(layout.spectrogram("DUMMY", "D001")),
             killed_writer(layout.spectrogram("DUMMY", "gone_from_the_index"))]
    layout.spectrogram("DUMMY", "D001").unlink()
    # a live writer's temporary file is left alone
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        busy = patch_file.parent / f".{patch_file.name}.{fileio._HOST}-{live.pid}.abcdefgh.tmp.hdf5"
        busy.write_bytes(b"in progress")
        runner.compute_spectrograms(layout, entry, n_jobs=1, progress=False)
        patches.create_patches(layout, entry)
        assert [p for p in stale if p.exists()] == []
        assert busy.exists()
    finally:
        live.kill()
        live.wait()
    busy.unlink()

    tiny = write_tiny_dataset(tmp_path / "tiny")
    experiment = Registry(experiments_dir).experiment("tiny", ["training.n_epochs=1"])
    first = run(experiment, (), tiny, verbose=0, evaluate=False)
    checkpoint_temp = killed_writer(tiny.checkpoint(first.model_id), ".keras")  # .checkpoint.keras.*.tmp.keras
    assert checkpoint_temp.name.startswith(".checkpoint.keras.") and checkpoint_temp.name.endswith(".tmp.keras")
    run(experiment, (), tiny, verbose=0, evaluate=False)  # the next run of the command sweeps the models folder
    assert not checkpoint_temp.exists()
    assert temps(tmp_path) == []


def test_read_only_output_is_one_line(dummy_on_small_fs, capsys):
    fs, layout = dummy_on_small_fs
    subprocess.run(["mount", "-o", "remount,ro", str(fs)], check=True)
    try:
        assert main(["spectrograms", "DUMMY", "-j", "1", "--data-dir", str(layout.root),
                     "--experiments", EXPERIMENTS]) == 2
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(fs)], check=True)
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("tartarus: error: read-only file system: cannot write "
                                              f"{layout.spectrograms_dir('DUMMY')}"), err
