import atexit
import os
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
if "TARTARUS_CACHE" not in os.environ:
    # converted pretrained weights go to a cache of this test session (subprocesses inherit it),
    # never to the user's ~/.cache/tartarus
    os.environ["TARTARUS_CACHE"] = tempfile.mkdtemp(prefix="tartarus-test-cache-")
    atexit.register(shutil.rmtree, os.environ["TARTARUS_CACHE"], True)

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tartarus.layout import DataLayout  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SUPER = REPO.parent / "shared" / "super"

TINY_EXPERIMENTS = """
[tiny_base]
dataset = { dataset = "TINY", fact = "class", dim = 3, npatches = 2, window = 1, evaluation = "multiclass" }
training = { n_epochs = 4, n_minibatch = 4, optimizer = "adam", learning_rate = 0.003, loss_func = "categorical_crossentropy", patience = 10 }
cnn = { architecture = "1", n_filters_1 = 8, n_filters_2 = 8, n_kernel_1 = [3, 16], n_kernel_2 = [3, 1], n_pool_1 = [2, 1], n_pool_2 = [2, 1], dropout_factor = 0.1, final_activation = "softmax" }

[tiny]
base = "tiny_base"
description = "a tiny audio-like experiment for tests"
"""


def write_tiny_dataset(root, n_per_class=6, frames=21, bins=16, npatches=2, seed=0, ds="TINY"):
    """A learnable patches dataset: each class lights up its own band of bins."""
    layout = DataLayout(root)
    rng = np.random.default_rng(seed)
    split_of = {"train": range(0, n_per_class - 2), "val": [n_per_class - 2], "test": [n_per_class - 1]}
    for set_, members in split_of.items():
        ids, ys, feats, index = [], [], [], []
        for c in range(3):
            for k in members:
                item = f"{ds[0]}{c}{k:02d}"
                ids.append(item)
                ys.append(np.eye(3)[c])
                for _ in range(npatches):
                    x = rng.normal(-40, 3, size=(frames, bins))
                    x[:, c * 5:(c * 5) + 5] += 12
                    feats.append(x[..., None])
                    index.append(item)
        layout.splits_dir.mkdir(parents=True, exist_ok=True)
        layout.items_index(set_, ds).write_text("\n".join(ids))
        np.save(layout.y(set_, "class", 3, ds), np.array(ys))
        path = layout.patches(set_, ds, npatches, 1)
        path.parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(path, "w") as f:
            f.create_dataset("features", data=np.array(feats, dtype=np.float32), chunks=(1, frames, bins, 1))
            f.create_dataset("index", data=np.array(index, dtype=object), dtype=h5py.string_dtype())
    layout.genre_labels(ds).write_text("low\nmid\nhigh\n")
    return layout


def run_on_backend(backend, script, *args, timeout=600):
    """Run a Python ``script`` in a fresh process on Keras ``backend``; return its JSON lines.

    Skips the test when the backend's package is not installed (Keras fixes its backend at import,
    hence the separate process). A failing script fails the test with the end of its stderr.
    """
    import importlib.util
    import json
    import subprocess
    import sys
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(REPO / "src") + os.pathsep + str(REPO)}
    out = subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True,
                         env=env, cwd=REPO, timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


@pytest.fixture
def experiments_dir(tmp_path):
    d = tmp_path / "experiments"
    d.mkdir()
    (d / "tiny.toml").write_text(TINY_EXPERIMENTS)
    shutil.copy(REPO / "experiments" / "datasets.toml", d / "datasets.toml")
    return d


@pytest.fixture
def tiny_layout(tmp_path):
    return write_tiny_dataset(tmp_path / "data")


@pytest.fixture
def super_root(tmp_path):
    """A private copy of the real SUPER dataset (skips when ../shared/super is absent)."""
    if not SUPER.is_dir():
        pytest.skip(f"real SUPER data not found at {SUPER}")
    root = tmp_path / "super"
    shutil.copytree(SUPER, root, ignore=shutil.ignore_patterns("SOURCE.md"))
    for p in root.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    return root


def cli_error_line(capsys):
    """The one ``tartarus: error:`` line a failed command wrote (start-up log lines of TensorFlow aside);
    fails the test on a traceback or on more than one error line."""
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("tartarus")]
    assert len(lines) == 1, err
    return lines[0]
