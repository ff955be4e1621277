"""Model folders: atomic id allocation, the manifest, and the ``trained_models.tsv`` index."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import re
import time
from pathlib import Path

from .errors import MissingInput
from .fileio import append_tsv_row, read_tsv

MODEL_ID = re.compile(r"^model_(\d+)$")
TRAINED_HEADER = ("model_id", "experiment", "dataset", "suffixes", "epochs", "best_val_loss", "finished")


def existing_ids(layout):
    if not layout.models_dir.is_dir():
        return []
    nums = [int(m.group(1)) for p in layout.models_dir.iterdir() if (m := MODEL_ID.match(p.name))]
    return sorted(nums)


def allocate_model_id(layout):
    """Create ``models/model_N`` with the next free N and return ``model_N``.

    ``os.mkdir`` either creates the folder or fails, atomically, so two runs started at once
    never receive the same id: the loser of a race moves on to the next number.
    """
    layout.models_dir.mkdir(parents=True, exist_ok=True)
    n = (existing_ids(layout) or [0])[-1] + 1
    while True:
        model_id = f"model_{n}"
        try:
            os.mkdir(layout.model_dir(model_id))
            return model_id
        except FileExistsError:
            n += 1


def require_model(layout, model_id):
    """The folder of a trained model, or MissingInput naming ``model.keras`` and how to train it."""
    path = layout.model_file(model_id)
    if not path.exists():
        raise MissingInput(path, "tartarus run EXPERIMENT (see trained models in "
                           f"{layout.trained_models()})", what=f"trained model {model_id}")
    return layout.model_dir(model_id)


def file_record(path, full_hash_limit=1 << 30):
    """Size and SHA-256 of an input file (of its first and last 64 MiB when it is huge)."""
    path = Path(path)
    size = path.stat().st_size
    h = hashlib.sha256()
    with open(path, "rb") as f:
        if size <= full_hash_limit:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
            kind = "sha256"
        else:
            h.update(f.read(64 << 20))
            f.seek(size - (64 << 20))
            h.update(f.read())
            kind = "sha256-head-tail-64MiB"
    return {"path": str(path), "bytes": size, kind: h.hexdigest()}


def package_versions():
    names = ("tartarus", "keras", "tensorflow", "jax", "torch", "numpy", "h5py", "librosa", "scipy",
             "scikit-learn", "gensim", "implicit")
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


def make_manifest(experiment, inputs, seed, backend):
    return {
        "experiment": experiment,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "backend": backend,
        "seed": seed,
        "versions": package_versions(),
        "host": platform.node(),
        "inputs": [file_record(p) for p in inputs],
    }


def record_trained(layout, model_id, experiment, dataset, suffixes, epochs, best_val_loss):
    append_tsv_row(layout.trained_models(), TRAINED_HEADER,
                   (model_id, experiment, dataset, ",".join(suffixes) or "-", epochs,
                    "" if best_val_loss is None else f"{best_val_loss:.6g}", time.strftime("%Y-%m-%dT%H:%M:%S")))


def trained_models(layout):
    """Rows of ``trained_models.tsv`` as dicts (empty when nothing was trained yet)."""
    path = layout.trained_models()
    if not path.exists():
        return []
    rows = read_tsv(path)
    header, body = rows[0], rows[1:]
    return [dict(zip(header, row)) for row in body]
