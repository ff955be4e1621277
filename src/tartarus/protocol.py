"""The training protocol of an experiment, resolved: early stopping, validation split, train items.

Plain logic over a validated Experiment (no Keras), shared by ``train.run`` and ``tartarus show``.
The published experiments get the seed's protocol from the schema defaults (patience 4, validation
accuracy for softmax heads and validation loss otherwise, last epoch's weights kept, sequential
validation split); other experiments state their own (see experiments/README.md).
"""

from __future__ import annotations

from .errors import ConfigError


def accuracy_kind(experiment):
    """Which accuracy the model is compiled with: ``"categorical"``, ``"binary"``, ``"auto"`` or None.

    A softmax head gets categorical accuracy whatever its loss (the seed compiled
    ``categorical_accuracy`` for every softmax head and early-stopped on it); a head trained with a
    binary cross-entropy for multi-label or binary evaluation gets binary accuracy; another
    multiclass model gets Keras' ``"accuracy"``; regression heads have none.
    """
    if experiment.cnn.final_activation == "softmax":
        return "categorical"
    if experiment.dataset.evaluation in ("multilabel", "binary") and experiment.training.loss_func == "binary_crossentropy":
        return "binary"
    if experiment.dataset.evaluation == "multiclass":
        return "auto"
    return None


def has_validation(experiment):
    """Whether training has a validation split: the val files, or a share held out of train."""
    return experiment.training.val_from_file or experiment.training.validation > 0


def resolve_monitor(experiment, has_val=None):
    """(quantity, mode) that early stopping watches: ``training.monitor`` resolved.

    ``"auto"`` is the seed's choice: ``val_accuracy`` for a softmax head, ``val_loss`` otherwise.
    Without a validation split (``has_val`` False; None: from the config) the training counterpart
    is watched. ``mode`` is ``"max"`` for an accuracy, ``"min"`` for a loss.
    """
    has_val = has_validation(experiment) if has_val is None else has_val
    monitor = experiment.training.monitor
    if monitor == "auto":
        monitor = "val_accuracy" if experiment.cnn.final_activation == "softmax" else "val_loss"
        if not has_val:
            monitor = monitor[len("val_"):]
    elif monitor.startswith("val_") and not has_val:
        raise ConfigError(f"experiment {experiment.name!r}: training.monitor = {monitor!r} needs a validation "
                          f"split, but there is none (val_from_file = false and validation = 0): monitor "
                          f"{monitor[len('val_'):]!r} or set training.validation")
    if monitor.endswith("accuracy") and accuracy_kind(experiment) is None:
        raise ConfigError(f"experiment {experiment.name!r}: training.monitor = {monitor!r}, but a "
                          f"{experiment.cnn.final_activation} head with a {experiment.training.loss_func} loss "
                          f"({experiment.dataset.evaluation}) has no accuracy: monitor a loss")
    return monitor, ("max" if monitor.endswith("accuracy") else "min")


def train_items_limit(experiment):
    """``dataset.nsamples`` as a number of train items, or None for ``"all"``.

    The seed's ``nsamples``: train on the first N rows of the train data (here: items, in
    items_index order); with val_from_file = false the validation share is split from those N.
    """
    value = experiment.dataset.nsamples.strip().lower()
    if value == "all":
        return None
    if value.isdigit() and int(value) > 0:
        return int(value)
    raise ConfigError(f"experiment {experiment.name!r}: dataset.nsamples must be \"all\" or a positive number "
                      f"of train items, got {experiment.dataset.nsamples!r}")


def validation_source(experiment):
    """One line saying where the validation items come from, as ``train.split_train_val`` does it."""
    t = experiment.training
    if t.val_from_file:
        return "the val split's files (val_from_file = true)"
    if t.validation <= 0:
        return "none (val_from_file = false, validation = 0)"
    if t.val_split == "seed":
        return (f"sequential, in items_index order: the first (1 - {t.validation:g} - {t.test:g}) of the train "
                f"items train, the next {t.validation:g} validate, the last {t.test:g} are left out "
                f"(val_split = \"seed\")")
    return (f"a random {t.validation:g} of the train items (seed {t.random_seed}), the rest train "
            f"(val_split = \"random\")")


def protocol_summary(experiment):
    """What ``tartarus show`` prints about training: early stopping and validation, resolved."""
    t = experiment.training
    try:
        monitor, mode = resolve_monitor(experiment)
    except ConfigError as exc:
        monitor, mode = f"error: {exc}", ""
    limit = train_items_limit(experiment)
    return {
        "early_stopping": t.early_stopping,
        "monitor": monitor + (f" ({'higher' if mode == 'max' else 'lower'} is better)" if mode else ""),
        "patience": t.patience,
        "weights_kept": "best epoch's (restore_best = true)" if t.restore_best else "last epoch's (restore_best = false)",
        "validation": validation_source(experiment),
        "train_items": "all" if limit is None else f"the first {limit} (nsamples)",
    }
