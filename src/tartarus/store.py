"""Model folders: atomic id allocation, the manifest, and the ``trained_models.tsv`` index."""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import os
import platform
import re
import shutil
import time
from pathlib import Path

from .errors import ConfigError, MissingInput
from .fileio import append_tsv_row, read_json, read_tsv, write_tsv

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
        if layout.checkpoint(model_id).exists():  # an interrupted run: resuming finishes it
            raise MissingInput(path, resume_command(layout, model_id),
                               what=f"trained model {model_id} ({model_status(layout, model_id)['status']})")
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
    """Add ``model_id``'s row to ``trained_models.tsv``, or replace its row (a resume that trained on)."""
    row = (model_id, experiment, dataset, ",".join(suffixes) or "-", epochs,
           "" if best_val_loss is None else f"{best_val_loss:.6g}", time.strftime("%Y-%m-%dT%H:%M:%S"))
    path = layout.trained_models()
    rows = read_tsv(path) if path.exists() else []
    if any(r[0] == model_id for r in rows[1:]):
        write_tsv(path, [rows[0]] + [row if r[0] == model_id else r for r in rows[1:]])
    else:
        append_tsv_row(path, TRAINED_HEADER, row)


def is_registered(layout, model_id):
    """Whether ``trained_models.tsv`` lists ``model_id`` (its training finished)."""
    return any(r.get("model_id") == model_id for r in trained_models(layout))


def hold_model(layout, model_id):
    """Lock model folder ``model_id`` for this process (released when the returned fd is closed).

    A second run resuming the same model is refused, and ``tartarus models --clean`` leaves the
    folder of a run still in its first epoch alone. The lock is ``flock`` on the folder itself.
    """
    fd = os.open(layout.model_dir(model_id), os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ConfigError(f"{layout.model_dir(model_id)} is in use by another tartarus run; "
                          f"wait for it to end") from None
    return fd


def _in_use(layout, model_id):
    try:
        os.close(hold_model(layout, model_id))
        return False
    except ConfigError:
        return True


def resume_command(layout, model_id):
    return layout.cli("run", "-", "--resume", model_id)


def model_status(layout, model_id):
    """What the folder of ``model_id`` holds: ``{"model_id", "status", "epochs", "hint"}``.

    status: ``finished`` (listed in trained_models.tsv), ``running`` (locked by a run),
    ``interrupted after N of M epoch(s)`` (an epoch checkpoint and no registration),
    or ``empty`` (stopped before its first epoch: no checkpoint, no model.keras).
    """
    epochs = None
    state_path = layout.training_state(model_id)
    if state_path.exists():
        epochs = read_json(state_path).get("epoch")
    if is_registered(layout, model_id):
        return {"model_id": model_id, "status": "finished", "epochs": epochs, "hint": ""}
    if _in_use(layout, model_id):
        return {"model_id": model_id, "status": "running", "epochs": epochs, "hint": ""}
    if layout.checkpoint(model_id).exists() or layout.model_file(model_id).exists():
        total = None
        if layout.model_config(model_id).exists():
            total = read_json(layout.model_config(model_id)).get("experiment", {}).get("training", {}).get("n_epochs")
        status = f"interrupted after {epochs or 0}" + (f" of {total}" if total else "") + " epoch(s)"
        return {"model_id": model_id, "status": status, "epochs": epochs,
                "hint": f"resume: {resume_command(layout, model_id)}"}
    return {"model_id": model_id, "status": "empty (stopped before its first epoch)", "epochs": None,
            "hint": f"remove: {layout.cli('models', '--clean')}"}


def unfinished_models(layout):
    """model_status of every model folder not listed in trained_models.tsv, by id."""
    registered = {r.get("model_id") for r in trained_models(layout)}
    return [model_status(layout, f"model_{n}") for n in existing_ids(layout) if f"model_{n}" not in registered]


def clean_models(layout):
    """Remove the model folders that hold no checkpoint and no model (runs stopped before their first
    epoch) and are not in use; return the removed folders."""
    removed = []
    for info in unfinished_models(layout):
        if not info["status"].startswith("empty"):
            continue
        folder = layout.model_dir(info["model_id"])
        try:
            fd = hold_model(layout, info["model_id"])  # a run that just took the folder keeps it
        except ConfigError:
            continue
        try:
            if not (layout.checkpoint(info["model_id"]).exists() or layout.model_file(info["model_id"]).exists()):
                shutil.rmtree(folder)
                removed.append(folder)
        finally:
            os.close(fd)
    return removed


def trained_models(layout):
    """Rows of ``trained_models.tsv`` as dicts (empty when nothing was trained yet)."""
    path = layout.trained_models()
    if not path.exists():
        return []
    rows = read_tsv(path)
    header, body = rows[0], rows[1:]
    return [dict(zip(header, row)) for row in body]
