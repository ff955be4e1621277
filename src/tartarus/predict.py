"""Model outputs and layer embeddings per item, aggregated over the item's patches.

``predict_sets`` computes them and writes nothing (the queries use it when no prediction is saved);
``predict(layout, "model_1", ["test"], layer=9)`` computes and writes
``train_data/X_test_model_1-pred_9_{ds}.npy`` and ``train_data/items_index_test_model_1-pred_9_{ds}.tsv``
(inputs for later experiments); without ``layer`` the outputs go to
``predictions/pred_model_1_test.npy`` with ``predictions/index_pred_model_1_test.tsv``
(``pred_model_1_test_{DS}.npy`` for another dataset, ``dataset=DS``); the names are
``DataLayout.predictions_of``'s.

Audio models predict from the split's patches file (what the seed's ``train.py`` does after
training), or with ``full_track=True`` from each item's whole spectrogram as the seed's
``predict.py`` does: ``trim_coeff`` of the frames cut from each end, patches of the model's length
with a hop of half a patch (50 % overlap) over the rest, the outputs averaged
(:func:`track_patches`); ``middle=True`` keeps only the middle one of those patches (its ``-rnd``).
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError, DataMismatch, MissingInput
from .fileio import read_items_index, read_json, save_npy, write_lines
from .inputs import (align_patches, iter_patch_batches, iter_patch_vector_batches, iter_vector_batches, load_inputs,
                     patch_shape, read_patch_index)
from .layout import DataLayout
from .models import check_input_shapes, layer_model, load_model, resolve_layer
from .store import read_record, require_model

AGGREGATORS = {"mean": np.mean, "max": np.max, "median": np.median}


@dataclass
class ItemPredictions:
    """Per-item rows in ``items_index`` order (items without patches left out, and listed)."""
    item_ids: list
    values: np.ndarray
    missing_items: list
    patch_counts: list = None  # full-track prediction: patches averaged for each item of item_ids


def aggregate_by_item(values, patch_rows, n_items, how="mean"):
    """Combine per-patch rows into per-item rows.

    values : (n_patches, d); patch_rows : (n_patches,) item row of each patch, in [0, n_items);
    returns (present_rows, (n_present, d)) with items in ascending row order; items without a patch
    are absent.
    """
    if how not in AGGREGATORS:
        raise ConfigError(f"predicting.aggregation: {how!r} is not one of {', '.join(AGGREGATORS)}")
    values = np.asarray(values)
    values = values.reshape(len(values), -1)
    patch_rows = np.asarray(patch_rows)
    if len(patch_rows) != len(values):
        raise DataMismatch(f"aggregating per item: {len(values)} patch rows of values but {len(patch_rows)} "
                           f"item rows of patches; expected one item row per patch")
    if len(patch_rows) and (patch_rows.min() < 0 or patch_rows.max() >= n_items):
        raise DataMismatch(f"aggregating per item: patches belong to item rows {patch_rows.min()} to "
                           f"{patch_rows.max()}, but the split has {n_items} items (rows 0 to {n_items - 1})")
    order = np.argsort(patch_rows, kind="stable")
    rows_sorted = patch_rows[order]
    present, starts = np.unique(rows_sorted, return_index=True)
    if how == "mean":
        sums = np.add.reduceat(values[order].astype(np.float64), starts, axis=0)
        counts = np.diff(np.append(starts, len(order)))[:, None]
        out = sums / counts
    else:
        groups = np.split(values[order], starts[1:])
        out = np.stack([AGGREGATORS[how](g, axis=0) for g in groups])
    return present, out.astype(np.float32)


def load_trained(layout, model_id):
    """(keras model, Experiment, store.ModelRecord) of a trained model."""
    require_model(layout, model_id)
    record = read_record(layout, model_id)
    return load_model(layout.model_file(model_id)), record.load_experiment(), record


def predict_items(model, layout, experiment, set_, layer=None, aggregation=None, batch_size=64, suffixes=()):
    """Outputs (or ``layer``'s outputs) of ``model`` for every item of ``set_``.

    Audio models run on every patch and their rows are aggregated per item (a ``patches+vectors``
    model gets each patch with its item's rows of the ``suffixes`` inputs); vector models read the
    experiment's ``train_data`` inputs (``suffixes``) and give one row per item directly.
    """
    ds = experiment.dataset
    net = model if layer is None else layer_model(model, layer)
    index_path = layout.items_index(set_, ds.dataset)
    item_ids = read_items_index(index_path, "the dataset's splits (see data/README.md)")
    patches, inputs = load_inputs(layout, experiment, tuple(suffixes), set_, item_ids, index_path)
    # a file remade with other settings than the model's fails here, naming both shapes
    shapes = ([patch_shape(patches)] if patches is not None else []) + [tuple(x.shape[1:]) for x in inputs or ()]
    check_input_shapes(model, shapes, f"the {set_} inputs of {ds.dataset}")
    if patches is None:
        outputs = [np.asarray(net.predict_on_batch(block)) for _, block in iter_vector_batches(inputs, 256)]
        values = np.concatenate(outputs).reshape(len(item_ids), -1).astype(np.float32)
        return ItemPredictions(list(item_ids), values, [])
    alignment = align_patches(read_patch_index(patches), item_ids, patches, index_path)
    batches = (iter_patch_batches(patches, batch_size) if inputs is None
               else iter_patch_vector_batches(patches, inputs, alignment.patch_rows, batch_size))
    outputs = [np.asarray(net.predict_on_batch(block)) for _, block in batches]
    values = np.concatenate(outputs) if outputs else np.zeros((0, 0), np.float32)
    present, per_item = aggregate_by_item(values, alignment.patch_rows, len(item_ids),
                                          aggregation or experiment.predicting.aggregation)
    if alignment.missing_items:
        warnings.warn(f"{set_}: {len(alignment.missing_items)} item(s) have no patch and get no prediction: "
                      + ", ".join(alignment.missing_items[:10]), stacklevel=2)
    return ItemPredictions([item_ids[r] for r in present], per_item, alignment.missing_items)


def track_patches(spec, frames, trim_coeff=0.15, middle=False):
    """The patches the seed's ``predict.py`` cuts from a whole track, ``(n, frames, bins)``.

    spec : (length, bins) spectrogram of the track; frames : patch length (the model's input);
    trim_coeff : share of ``length`` cut from each end (``int(length * trim_coeff)`` frames), in
    [0, 0.5); middle : keep only the middle patch (index ``n // 2``, the seed's ``-rnd``).
    Patches start every ``int(frames / 2)`` frames (50 % overlap) from the first trimmed frame;
    ``n = 1 + (trimmed - frames) // hop``, the tail that does not fill a patch is dropped. A track
    whose trimmed part is shorter than one patch gives ``n = 0`` (the seed failed on it and left it
    out; here too).
    """
    if not 0 <= trim_coeff < 0.5:
        raise ConfigError(f"predicting.trim_coeff must be in [0, 0.5), got {trim_coeff!r}")
    trim = int(spec.shape[0] * trim_coeff)
    if trim:
        spec = spec[trim:-trim]
    hop = max(1, int(frames / 2))
    if spec.shape[0] < frames:
        return np.zeros((0, frames, spec.shape[1]), dtype=np.float32)
    starts = np.arange(1 + (spec.shape[0] - frames) // hop) * hop
    if middle:
        starts = starts[[len(starts) // 2]]
    return np.stack([spec[s:s + frames] for s in starts]).astype(np.float32, copy=False)


def _check_spectrograms(layout, ds, params, model_id):
    """The spectrogram folder of ``ds``, checked to hold spectrograms made as the model's patches."""
    from .config.schema import DatasetEntry

    command = layout.cli("spectrograms", ds)
    stored = read_json(layout.spectrogram_params(ds), command)
    keys = set(stored) | ({"db_ref", "top_db"} & set(params))
    defaults = DatasetEntry(name=ds)
    default = {"db_ref": defaults.db_reference(), "top_db": defaults.top_db}  # absent: fixed 1.0, no clip
    diffs = [f"{k}: {params.get(k, default.get(k))!r} (model) vs {stored.get(k, default.get(k))!r} (spectrograms)"
             for k in sorted(keys) if params.get(k, default.get(k)) != stored.get(k, default.get(k))]
    if diffs:
        raise DataMismatch(f"{model_id} was trained on patches of other spectrograms than those in "
                           f"{layout.spectrograms_dir(ds)} ({'; '.join(diffs)}); compute them with the model's "
                           f"settings (a dataset entry with these values, then {command})")


def predict_tracks(model, layout, experiment, record, set_, layer=None, aggregation=None, trim_coeff=None,
                   middle=False, batch_size=64):
    """Outputs (or ``layer``'s) of an audio model for every item of ``set_``, from whole tracks.

    Each item's spectrogram ``spectrograms/{ds}/{id}.npy`` is cut by :func:`track_patches` (the
    experiment's ``predicting.trim_coeff`` unless given) and the outputs of its patches are
    combined (``predicting.aggregation``, the seed's mean). The model's own input scaling
    (``Standardize``) applies. Items without a spectrogram, or too short for one patch, get no
    row and are listed in ``missing_items``. record : the model's store.ModelRecord.
    """
    from .models import get_architecture

    ds = experiment.dataset.dataset
    model_id = record.model_id
    if get_architecture(experiment.cnn.architecture).input_kind != "patches":
        raise ConfigError(f"full-track prediction feeds spectrogram patches only; {model_id} (architecture "
                          f"{experiment.cnn.architecture}) reads other inputs: predict from its patches files")
    if record.input_prescaled:
        raise DataMismatch(f"{model_id} was trained on patches the seed's create_patches.py had already "
                           f"standardised with a scaler that is not part of the model, so whole-track "
                           f"spectrograms cannot be scaled like them: predict from patches files")
    params = record.audio_params
    if not params:
        raise DataMismatch(f"{model_id} was trained on patches without spectrogram settings (no 'params' "
                           f"attribute), so whole tracks cannot be checked against them: predict from patches files")
    _check_spectrograms(layout, ds, params, model_id)
    frames = int(model.inputs[0].shape[1])  # (None, frames, bins, 1)
    trim_coeff = experiment.predicting.trim_coeff if trim_coeff is None else trim_coeff
    how = aggregation or experiment.predicting.aggregation
    if how not in AGGREGATORS:
        raise ConfigError(f"predicting.aggregation: {how!r} is not one of {', '.join(AGGREGATORS)}")
    net = model if layer is None else layer_model(model, layer)
    item_ids = read_items_index(layout.items_index(set_, ds), "the dataset's splits (see data/README.md)")
    ids, rows, counts, missing = [], [], [], []
    for item_id in item_ids:
        path = layout.spectrogram(ds, item_id)
        if not path.exists():
            missing.append(item_id)
            continue
        try:
            spec = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:  # EOFError: an empty file
            raise DataMismatch(f"{path}: unreadable spectrogram ({exc}); delete it and run "
                               f"{layout.cli('spectrograms', ds)} again") from None
        patches = track_patches(spec, frames, trim_coeff, middle)
        if not len(patches):
            missing.append(item_id)
            continue
        out = np.concatenate([np.asarray(net.predict_on_batch(patches[i:i + batch_size, ..., np.newaxis]))
                              for i in range(0, len(patches), batch_size)])
        ids.append(item_id)
        rows.append(AGGREGATORS[how](out.reshape(len(out), -1).astype(np.float64), axis=0))
        counts.append(len(patches))
    if not ids:
        raise MissingInput(layout.spectrograms_dir(ds), layout.cli("spectrograms", ds),
                           what=f"spectrograms (at least one patch long) of the {set_} items of {ds}")
    if missing:
        warnings.warn(f"{set_}: {len(missing)} item(s) have no spectrogram at least one patch long (after "
                      f"trimming) and get no prediction: " + ", ".join(missing[:10]), stacklevel=2)
    return ItemPredictions(ids, np.stack(rows).astype(np.float32), missing, counts)


def predict_sets(layout, model_id, sets=("test",), layer=None, aggregation=None, full_track=False, dataset=None,
                 trim_coeff=None, middle=False, patches=False):
    """Per-item predictions (or layer embeddings) of a trained model, one split at a time; writes nothing.

    Yields ``(set_, ItemPredictions)`` for each of ``sets``; the arguments are checked before the
    first split is computed. full_track : predict from whole spectrograms (:func:`predict_tracks`)
    instead of patches files; dataset : predict the items of another dataset (same inputs, same
    settings; the seed's ``-pd``); trim_coeff, middle : full-track options (default: the
    experiment's ``predicting.trim_coeff``); patches : the seed's ``-p``, predict from the patches
    files: what an audio model does without ``full_track`` anyway, so it only asserts that (a model
    without patch input, or ``full_track``, is a ConfigError).
    """
    layout = layout if isinstance(layout, DataLayout) else DataLayout(layout)
    model, experiment, record = load_trained(layout, model_id)
    own = experiment.dataset.dataset
    if dataset and dataset != own:
        experiment = dataclasses.replace(experiment, dataset=dataclasses.replace(experiment.dataset, dataset=dataset))
    if patches:
        from .inputs import PATCH_KINDS
        from .models import get_architecture
        if full_track:
            raise ConfigError("predict: -p (patches files) and --full-track (whole spectrograms) exclude each other")
        kind = get_architecture(experiment.cnn.architecture).input_kind
        if kind not in PATCH_KINDS:
            raise ConfigError(f"predict -p predicts from spectrogram patches files, but {model_id} (architecture "
                              f"{experiment.cnn.architecture}) reads {kind}: leave -p out")
    if (trim_coeff is not None or middle) and not full_track:
        raise ConfigError("trim_coeff and middle apply to full-track prediction only (full_track=True, "
                          "predict --full-track)")
    if layer is not None:
        resolve_layer(model, layer)  # fail before any work on a bad index or name
    for set_ in sets:
        if full_track:
            yield set_, predict_tracks(model, layout, experiment, record, set_, layer, aggregation, trim_coeff,
                                       middle)
        else:
            yield set_, predict_items(model, layout, experiment, set_, layer, aggregation, suffixes=record.suffixes)


def predict(layout, model_id, sets=("test",), layer=None, aggregation=None, full_track=False, dataset=None,
            trim_coeff=None, middle=False, patches=False):
    """Write per-item predictions (or layer embeddings) of a trained model; return what was written.

    The arguments are :func:`predict_sets`'s. Each split's rows go to ``layout.predictions_of``
    (values and items index) as soon as they are computed. Returns ``[(set_, values path, index
    path, ItemPredictions), ...]``.
    """
    layout = layout if isinstance(layout, DataLayout) else DataLayout(layout)
    require_model(layout, model_id)
    own = read_record(layout, model_id).load_experiment().dataset.dataset
    ds = dataset or own
    written = []
    for set_, result in predict_sets(layout, model_id, sets, layer, aggregation, full_track, dataset, trim_coeff,
                                     middle, patches):
        out, index = layout.predictions_of(model_id, set_, ds, layer, ds if ds != own else None)
        save_npy(out, result.values)
        write_lines(index, result.item_ids)
        written.append((set_, out, index, result))
    return written
