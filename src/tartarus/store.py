"""Model folders: atomic id allocation, the model record, the manifest, and the ``trained_models.tsv`` index.

A trained model's folder holds its Keras files and one :class:`ModelRecord` (what the model was
trained on and how), written by :func:`write_record` and read by :func:`read_record` only.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import os
import platform
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError, DataMismatch, MissingInput
from .fileio import append_tsv_row, read_json, read_tsv, write_json, write_tsv

@dataclass
class ModelRecord:
    """What a trained model was made from, stored beside it (``layout.model_config``, JSON).

    model_id : e.g. ``"model_1"``.
    experiment : the resolved experiment as a plain dict (``Experiment.to_dict()``, with ``name``);
        :meth:`load_experiment` validates it back.
    suffixes : the ``train_data`` input suffixes (META_SUFFIX) it was trained with.
    input_shapes : one shape per model input, without the batch axis.
    input_stats : the input scaling summary (patch models), else empty.
    input_prescaled : the training patches were standardised by the seed's create_patches.py.
    backend : the Keras backend it was trained on.
    audio_params : spectrogram and patch settings of the training patches (None: vector inputs),
        so new audio can be cut the same way.
    resume_overrides : ``{"at_epoch": N, key: new value, ...}`` per resume that changed a key.
    other : keys of a record this version does not know, kept as they are on rewrite.
    """
    model_id: str
    experiment: dict
    suffixes: tuple = ()
    input_shapes: list = field(default_factory=list)
    input_stats: list = field(default_factory=list)
    input_prescaled: bool = False
    backend: str = ""
    audio_params: dict | None = None
    resume_overrides: list = field(default_factory=list)
    other: dict = field(default_factory=dict)

    def load_experiment(self):
        """The record's experiment, validated (keys removed from the schema since are left out)."""
        from .config import experiment_from_dict
        return experiment_from_dict(self.experiment.get("name", self.model_id), self.experiment, saved=True)

    def to_dict(self):
        doc = {"model_id": self.model_id, "experiment": self.experiment, "suffixes": list(self.suffixes),
               "input_shapes": [list(s) for s in self.input_shapes], "input_stats": self.input_stats,
               "input_prescaled": self.input_prescaled, "backend": self.backend,
               "audio_params": self.audio_params}
        if self.resume_overrides:
            doc["resume_overrides"] = self.resume_overrides
        return {**doc, **self.other}

    @classmethod
    def from_dict(cls, doc, model_id, path="the model record"):
        """A record from its JSON document; keys a model trained by an earlier version lacks get defaults."""
        if not isinstance(doc, dict) or not isinstance(doc.get("experiment"), dict):
            raise DataMismatch(f"{path}: expected a JSON object with an 'experiment' object, got "
                               f"{type(doc.get('experiment') if isinstance(doc, dict) else doc).__name__}")
        known = {"model_id", "experiment", "suffixes", "input_shapes", "input_stats", "input_prescaled", "backend",
                 "audio_params", "resume_overrides"}
        return cls(model_id=doc.get("model_id") or model_id, experiment=doc["experiment"],
                   suffixes=tuple(doc.get("suffixes") or ()),
                   input_shapes=[tuple(s) for s in doc.get("input_shapes") or ()],
                   input_stats=doc.get("input_stats") or [], input_prescaled=bool(doc.get("input_prescaled")),
                   backend=doc.get("backend") or "", audio_params=doc.get("audio_params"),
                   resume_overrides=list(doc.get("resume_overrides") or ()),
                   other={k: v for k, v in doc.items() if k not in known})


def write_record(layout, record):
    """Write ``record`` as its model's ``layout.model_config`` (atomically)."""
    write_json(layout.model_config(record.model_id), record.to_dict())


def read_record(layout, model_id):
    """The :class:`ModelRecord` of ``model_id``; MissingInput when the model has none (never trained)."""
    path = layout.model_config(model_id)
    if not path.exists():
        raise MissingInput(path, layout.cli("run", "EXPERIMENT"), what=f"record of {model_id} (a trained model)")
    return ModelRecord.from_dict(read_json(path), model_id, path)


def has_record(layout, model_id):
    """Whether ``model_id`` has a record (its training began)."""
    return layout.model_config(model_id).exists()


def write_manifest(layout, model_id, experiment, inputs, seed, backend):
    """Write ``model_id``'s manifest: the input files it was trained on (hashed), versions, host."""
    write_json(layout.manifest(model_id), make_manifest(experiment, inputs, seed, backend))


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
        raise MissingInput(path, layout.cli("run", "EXPERIMENT"),
                           what=f"trained model {model_id} (the trained ones are listed in {layout.trained_models()})")
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
            total = read_record(layout, model_id).experiment.get("training", {}).get("n_epochs")
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
