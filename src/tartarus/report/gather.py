"""What a data root knows about one trained model, read into one object for its report; writes nothing.

:func:`gather_model` reads the model folder (record, manifest, history, training state) and the
model's results files; a file the model does not have (a model trained before manifests, a split
never evaluated) is simply absent from the facts, never an error, so that a report can be made of
any model that has a record.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..fileio import read_json
from ..layout import SETS, DataLayout
from ..store import read_record, trained_models


@dataclass
class ModelFacts:
    """Everything a report shows of one model, as read from disk.

    model_id; record (its :class:`tartarus.store.ModelRecord`: the experiment, suffixes and backend
    below come from it); manifest (inputs with sizes and hashes, versions, host) or None;
    history ``{metric: [one value per epoch]}``; state (``training_state.json``: epochs, best epoch,
    ``epoch_seconds``) or None; results ``{set: results JSON}`` for every evaluated split, in
    :data:`SETS` order; finished: when training finished (``trained_models.tsv``), or "".
    """
    model_id: str
    record: object
    manifest: dict | None = None
    history: dict = field(default_factory=dict)
    state: dict | None = None
    results: dict = field(default_factory=dict)
    finished: str = ""

    @property
    def experiment(self):
        """The resolved experiment as a plain dict, with ``name``."""
        return {"name": self.model_id, **self.record.experiment}

    @property
    def suffixes(self):
        """The ``train_data`` input suffixes it was trained with."""
        return tuple(self.record.suffixes)

    @property
    def backend(self):
        return self.record.backend

    @property
    def name(self):
        return self.experiment.get("name", self.model_id)

    @property
    def dataset(self):
        return (self.experiment.get("dataset") or {}).get("dataset", "")

    @property
    def evaluation(self):
        return (self.experiment.get("dataset") or {}).get("evaluation", "")

    @property
    def inputs(self):
        """:func:`inputs_label` of the model's suffixes."""
        return inputs_label(self.suffixes)

    @property
    def epochs(self):
        """Epochs trained: the training state's count, else the history's length."""
        epochs, _ = training_time(self.state)
        return epochs if epochs is not None else max((len(v) for v in self.history.values()), default=0)

    @property
    def training_seconds(self):
        """Wall seconds of all epochs (:func:`training_time`), None when not recorded."""
        return training_time(self.state)[1]


def inputs_label(suffixes):
    """The input suffixes joined as the tables show them, e.g. ``model_1-pred_9+model_2-pred_5``;
    ``patches`` for a model without suffixes (it reads its dataset's patches files)."""
    return "+".join(suffixes) or "patches"


def training_time(state):
    """``(epochs, training seconds)`` of a model's training state (``training_state.json`` as a dict,
    or None); each None where unknown. The seconds are the sum of the state's ``epoch_seconds``, None
    for a model trained before epochs were timed, or when they cover only some of its epochs (a
    resume of such a model): a part would pass for the whole."""
    state = state or {}
    epochs = state.get("epoch")
    seconds = state.get("epoch_seconds") or []
    total = float(sum(seconds)) if epochs and len(seconds) >= epochs else None
    return (int(epochs) if epochs is not None else None), total


def _optional_json(path):
    return read_json(path) if path.exists() else None


def gather_model(layout, model_id):
    """The :class:`ModelFacts` of ``model_id``; MissingInput (naming ``tartarus run``) without a record."""
    layout = layout if isinstance(layout, DataLayout) else DataLayout(layout)
    record = read_record(layout, model_id)
    finished = next((row.get("finished", "") for row in trained_models(layout) if row.get("model_id") == model_id), "")
    results = {}
    for set_ in SETS:
        doc = _optional_json(layout.result(model_id, set_))
        if doc is not None:
            results[set_] = doc
    return ModelFacts(model_id=model_id, record=record, manifest=_optional_json(layout.manifest(model_id)),
                      history=_optional_json(layout.history(model_id)) or {},
                      state=_optional_json(layout.training_state(model_id)), results=results, finished=finished)


def format_duration(seconds):
    """``83.2`` -> ``"1m 23s"``, ``4.5`` -> ``"4.5s"``, ``3720`` -> ``"1h 02m"``; None -> ``""``."""
    if seconds is None:
        return ""
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"
