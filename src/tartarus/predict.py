"""Model outputs and layer embeddings per item, aggregated over the item's patches.

``predict(layout, "model_1", ["test"], layer=9)`` writes
``train_data/X_test_model_1-pred_9_{ds}.npy`` and ``train_data/items_index_test_model_1-pred_9_{ds}.tsv``
(inputs for later experiments); without ``layer`` the outputs go to
``predictions/pred_model_1_test.npy`` with ``predictions/index_pred_model_1_test.tsv``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .config import experiment_from_dict
from .errors import ConfigError
from .fileio import read_json, read_lines, save_npy, write_lines
from .inputs import (align_patches, iter_patch_batches, iter_patch_vector_batches, iter_vector_batches, load_inputs,
                     read_patch_index)
from .layout import DataLayout
from .models import layer_model, load_model, resolve_layer
from .store import require_model

AGGREGATORS = {"mean": np.mean, "max": np.max, "median": np.median}


@dataclass
class ItemPredictions:
    """Per-item rows in ``items_index`` order (items without patches left out, and listed)."""
    item_ids: list
    values: np.ndarray
    missing_items: list


def aggregate_by_item(values, patch_rows, n_items, how="mean"):
    """Combine per-patch rows into per-item rows.

    values : (n_patches, d); patch_rows : (n_patches,) item row of each patch; returns
    (present_rows, (n_present, d)) with items in ascending row order; items without a patch are absent.
    """
    if how not in AGGREGATORS:
        raise ConfigError(f"predicting.aggregation: {how!r} is not one of {', '.join(AGGREGATORS)}")
    values = np.asarray(values)
    values = values.reshape(len(values), -1)
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
    assert present.max(initial=-1) < n_items
    return present, out.astype(np.float32)


def saved_experiment(layout, model_id):
    """(Experiment, saved config dict) of a trained model, from its config.json (no model loaded)."""
    saved = read_json(layout.model_config(model_id),
                      f"train a model first (tartarus run ...); {model_id} has no config")
    return experiment_from_dict(saved["experiment"]["name"], saved["experiment"]), saved


def load_trained(layout, model_id):
    """(keras model, Experiment, saved config dict) of a trained model."""
    require_model(layout, model_id)
    experiment, saved = saved_experiment(layout, model_id)
    return load_model(layout.model_file(model_id)), experiment, saved


def predict_items(model, layout, experiment, set_, layer=None, aggregation=None, batch_size=64, suffixes=()):
    """Outputs (or ``layer``'s outputs) of ``model`` for every item of ``set_``.

    Audio models run on every patch and their rows are aggregated per item (a ``patches+vectors``
    model gets each patch with its item's rows of the ``suffixes`` inputs); vector models read the
    experiment's ``train_data`` inputs (``suffixes``) and give one row per item directly.
    """
    ds = experiment.dataset
    net = model if layer is None else layer_model(model, layer)
    index_path = layout.items_index(set_, ds.dataset)
    item_ids = read_lines(index_path, "the dataset's splits (see data/README.md)")
    patches, inputs = load_inputs(layout, experiment, tuple(suffixes), set_, item_ids, index_path)
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


def predict(layout, model_id, sets=("test",), layer=None, aggregation=None):
    """Write per-item predictions (or layer embeddings) of a trained model; return the paths written."""
    layout = layout if isinstance(layout, DataLayout) else DataLayout(layout)
    model, experiment, saved = load_trained(layout, model_id)
    suffixes = tuple(saved.get("suffixes", ()))
    ds = experiment.dataset.dataset
    if layer is not None:
        resolve_layer(model, layer)  # fail before any work on a bad index or name
    written = []
    for set_ in sets:
        result = predict_items(model, layout, experiment, set_, layer, aggregation, suffixes=suffixes)
        if layer is None:
            out, index = layout.prediction(model_id, set_), layout.prediction_index(model_id, set_)
        else:
            suffix = layout.embedding_suffix(model_id, layer)
            out, index = layout.x(set_, suffix, ds), layout.items_index(set_, ds, suffix)
        save_npy(out, result.values)
        write_lines(index, result.item_ids)
        written.append((set_, out, index, result))
    return written
