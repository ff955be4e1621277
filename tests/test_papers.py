"""Every published experiment of the registry, end to end on stand-ins of the released layouts.

Each experiment runs with its registry settings (the faithful protocol), shortened only in epochs,
and the test checks what the seed's code fixes: the built model's input widths, hidden units,
convolution filters and kernels, dropout rates and output width (the table below is written from
the seed's ``run_experiments.py`` and ``models.py`` at b214f66, not from our TOML), the metrics of
the evaluation kind, the shape and range of the predictions, finite losses, and an early stop after
the seed's patience. ``SEED_DICTIONARY`` holds the seed's settings of every published experiment.
"""

import math

import keras
import numpy as np
import pytest
from sklearn.metrics import accuracy_score, average_precision_score, confusion_matrix, f1_score, roc_auc_score

from tests.standins import AB_FEATURES, INPUTS, write_patch_standin, write_standin
from tartarus import fileio
from tartarus.config import Registry
from tartarus.evaluate import class_scores, evaluate_scores
from tartarus.models import load_model
from tartarus.pipeline import run_experiment as run  # train -> predict -> evaluate


def _dims(ds, suffixes):
    return [INPUTS[ds][s][0] for s in suffixes]


# experiment -> (dataset, META_SUFFIX inputs in order, hidden dense units, output width, dropout)
# The inputs are those of the seed's README commands where it gives them; hidden units, output
# width and dropout are the seed's values. An empty suffix list: the HDF5 vector features.
VECTOR_EXPERIMENTS = {
    "rec_sparse": ("MSD-A-artists", ["sem-bio"], [2048, 2048], 200, 0.5),
    # rec_dense, corrected, on a dense input: song vectors (the seed's comment: "MSD-A-songs for song rec")
    "rec_dense": ("MSD-A-songs", ["audio-emb"], [2048, 2048], 200, 0.5),
    "rec_dense_seed": ("MSD-A-artists", ["sem-bio"], [2048, 2048], 200, 0.5),
    "rec_multi": ("MSD-A-songs", ["a-sem-emb", "audio-emb"], [512], 200, 0.7),
    "logistic_multilabel_vector": ("MuMu-albums", ["model_audio"], [], 250, 0.0),
    "cosine_multilabel_vector": ("MuMu-albums", ["model_visual"], [], 50, 0.7),
    "logistic_multilabel_bi": ("MuMu-albums", ["model_audio", "model_text"], [], 250, 0.0),
    "cosine_multilabel_bi": ("MuMu-albums", ["model_visual", "model_audio"], [], 50, 0.7),
    "logistic_multilabel_tri": ("MuMu-albums", ["model_audio", "model_text", "model_visual"], [], 250, 0.0),
    "cosine_multilabel_tri": ("MuMu-albums", ["model_audio", "model_text", "model_visual"], [], 50, 0.7),
    "logistic_text_multilabel": ("MuMu-albums", ["VSM"], [2048, 2048], 250, 0.5),
    "cosine_text_multilabel": ("MuMu-albums", ["VSM-SEM"], [2048, 2048], 50, 0.5),
    "cosine_text_multilabel_seed": ("MuMu-albums", ["VSM"], [2048, 2048], 50, 0.5),
    "single-label-vector": ("MSD-I", ["audio"], [], 15, 0.5),
    "single-label-multimodal": ("MSD-I", ["audio", "visual"], [], 15, 0.5),
    "single-label-all": ("MSD-I", ["audio", "visual", "mm-audio", "mm-visual"], [], 15, 0.5),
    # architecture 6: relu, tanh and sigmoid branches of n_dense = 2048 units, then n_dense_2 = 1024
    "genres_allmusic": ("allmusic", [], [2048, 2048, 2048, 1024], 766, 0.5),
    "genres_discogs": ("discogs", [], [256], 315, 0.5),
    "genres_lastfm": ("lastfm", [], [256], 327, 0.5),
    "genres_tagtraum": ("tagtraum", [], [256], 296, 0.5),
    "genres_allmusic_multimodal": ("allmusic", ["vec-a", "vec-b", "vec-c", "vec-d"], [], 766, 0.5),
    "genres_discogs_multimodal": ("discogs", ["vec-a", "vec-b", "vec-c", "vec-d"], [], 315, 0.5),
    "genres_lastfm_multimodal": ("lastfm", ["vec-a", "vec-b", "vec-c", "vec-d"], [], 327, 0.5),
    "genres_tagtraum_multimodal": ("tagtraum", ["vec-a", "vec-b", "vec-c", "vec-d"], [], 296, 0.5),
    "genres_discogs_singlemodal": ("discogs", ["vec-a"], [], 315, 0.5),
}
# experiment -> (dataset, conv filters, conv kernels (frames, bins), output width, dropout)
AUDIO_EXPERIMENTS = {
    "logistic_audio_multilabel": ("MuMu-tracks", [64, 128, 128, 64], [(4, 70), (4, 6), (4, 1), (1, 1)], 250, 0.0),
    "cosine_audio_multilabel": ("MuMu-tracks", [256, 512, 1024, 1024], [(4, 70), (4, 6), (4, 1), (1, 1)], 50, 0.5),
    "cosine_audio_multilabel_seed": ("MuMu-tracks", [256, 512, 1024, 1024], [(4, 70), (4, 6), (4, 1), (1, 1)],
                                     50, 0.5),
    "single-label-audio": ("MSD-I", [64, 128, 256], [(4, 96), (4, 1), (4, 1)], 15, 0.5),
}
EPOCHS = ["training.n_epochs=1", "training.n_minibatch=8"]


# The seed's dictionary (run_experiments.py at b214f66), one row per experiment: dataset, fact, dim,
# evaluation, loss_func, normalize_y, val_from_file, architecture, n_dense, n_dense_2,
# dropout_factor, final_activation, sparse (None: not set), npatches, window.
SEED_DICTIONARY = {
    "rec_sparse": ("MSD-A-artists", "als", 200, "recommendation", "cosine", True, False,
                   "3", 2048, 2048, 0.5, "linear", True, 1, 15),
    "rec_dense": ("MSD-A-artists", "als", 200, "recommendation", "cosine", True, False,
                  "3", 2048, 2048, 0.5, "linear", True, 1, 15),
    "rec_multi": ("MSD-A-songs", "als", 200, "recommendation", "cosine", True, False,
                  "32", 512, 0, 0.7, "linear", False, 1, 15),
    "logistic_multilabel_vector": ("MuMu-albums", "class", 250, "multilabel", "binary_crossentropy", False, True,
                                   "3", 0, 0, 0.0, "sigmoid", False, 1, 15),
    "cosine_multilabel_vector": ("MuMu-albums", "pmi", 50, "multilabel", "cosine", True, True,
                                 "3", 0, 0, 0.7, "linear", False, 1, 15),
    "logistic_multilabel_bi": ("MuMu-albums", "class", 250, "multilabel", "binary_crossentropy", False, True,
                               "32", 0, 0, 0.0, "sigmoid", False, 1, 15),
    "cosine_multilabel_bi": ("MuMu-albums", "pmi", 50, "multilabel", "cosine", True, True,
                             "32", 0, 0, 0.7, "linear", False, 1, 15),
    "logistic_multilabel_tri": ("MuMu-albums", "class", 250, "multilabel", "binary_crossentropy", False, True,
                                "33", 0, 0, 0.0, "sigmoid", False, 1, 15),
    "cosine_multilabel_tri": ("MuMu-albums", "pmi", 50, "multilabel", "cosine", True, True,
                              "33", 0, 0, 0.7, "linear", False, 1, 15),
    "logistic_text_multilabel": ("MuMu-albums", "class", 250, "multilabel", "binary_crossentropy", False, True,
                                 "3", 2048, 2048, 0.5, "sigmoid", True, 1, 15),
    "cosine_text_multilabel": ("MuMu-albums", "pmi", 50, "multilabel", "cosine", True, True,
                               "3", 2048, 2048, 0.5, "sigmoid", True, 1, 15),
    "logistic_audio_multilabel": ("MuMu-tracks", "class", 250, "multilabel", "binary_crossentropy", False, True,
                                  "1", 0, 0, 0.0, "sigmoid", False, 1, 15),
    "cosine_audio_multilabel": ("MuMu-tracks", "pmi", 50, "multilabel", "cosine", True, True,
                                "1", 0, 0, 0.5, "sigmoid", False, 1, 15),
    "single-label-audio": ("MSD-I", "class", 15, "multiclass", "categorical_crossentropy", False, True,
                           "1", 0, 0, 0.5, "softmax", None, 1, 15),
    "single-label-vector": ("MSD-I", "class", 15, "multiclass", "categorical_crossentropy", False, True,
                            "3", 0, 0, 0.5, "softmax", False, 1, 15),
    "single-label-multimodal": ("MSD-I", "class", 15, "multiclass", "categorical_crossentropy", False, True,
                                "32", 0, 0, 0.5, "softmax", False, 1, 15),
    "single-label-all": ("MSD-I", "class", 15, "multiclass", "categorical_crossentropy", False, True,
                         "34", 0, 0, 0.5, "softmax", False, 1, 15),
    "genres_allmusic": ("allmusic", "class", 766, "multilabel", "binary_crossentropy", False, True,
                        "6", 2048, 1024, 0.5, "sigmoid", False, 1, 1),
    "genres_discogs": ("discogs", "class", 315, "multilabel", "binary_crossentropy", False, True,
                       "3", 256, 0, 0.5, "sigmoid", False, 1, 1),
    "genres_lastfm": ("lastfm", "class", 327, "multilabel", "binary_crossentropy", False, True,
                      "3", 256, 0, 0.5, "sigmoid", False, 1, 1),
    "genres_tagtraum": ("tagtraum", "class", 296, "multilabel", "binary_crossentropy", False, True,
                        "3", 256, 0, 0.5, "sigmoid", False, 1, 1),
    "genres_allmusic_multimodal": ("allmusic", "class", 766, "multilabel", "binary_crossentropy", False, True,
                                   "34", 0, 0, 0.5, "sigmoid", False, 1, 15),
    "genres_discogs_multimodal": ("discogs", "class", 315, "multilabel", "binary_crossentropy", False, True,
                                  "34", 0, 0, 0.5, "sigmoid", False, 1, 15),
    "genres_lastfm_multimodal": ("lastfm", "class", 327, "multilabel", "binary_crossentropy", False, True,
                                 "34", 0, 0, 0.5, "sigmoid", False, 1, 15),
    "genres_tagtraum_multimodal": ("tagtraum", "class", 296, "multilabel", "binary_crossentropy", False, True,
                                   "34", 0, 0, 0.5, "sigmoid", False, 1, 15),
    "genres_discogs_singlemodal": ("discogs", "class", 315, "multilabel", "binary_crossentropy", False, True,
                                   "3", 0, 0, 0.5, "sigmoid", False, 1, 15),
}
SETTING_KEYS = (("dataset", "dataset"), ("dataset", "fact"), ("dataset", "dim"), ("dataset", "evaluation"),
                ("training", "loss_func"), ("training", "normalize_y"), ("training", "val_from_file"),
                ("cnn", "architecture"), ("cnn", "n_dense"), ("cnn", "n_dense_2"), ("cnn", "dropout_factor"),
                ("cnn", "final_activation"), ("dataset", "sparse"), ("dataset", "npatches"), ("dataset", "window"))
# the corrected defaults (experiments/papers.md, "Where the seed contradicted itself"); their
# `_seed` variants must equal the seed's row
CORRECTED = {"rec_dense": {"sparse": False}, "cosine_audio_multilabel": {"final_activation": "linear"},
             "cosine_text_multilabel": {"final_activation": "linear"}}
PAPERS = set(SEED_DICTIONARY)


@pytest.mark.parametrize("name", sorted(SEED_DICTIONARY))
def test_registry_settings_are_the_seeds(name):
    registry = Registry()
    for variant in [name] + ([f"{name}_seed"] if name in CORRECTED else []):
        experiment = registry.experiment(variant)
        expected = dict(zip([key for _, key in SETTING_KEYS], SEED_DICTIONARY[name]))
        if variant == name:
            expected.update(CORRECTED.get(name, {}))
        for section, key in SETTING_KEYS:
            if expected[key] is not None:
                assert getattr(getattr(experiment, section), key) == expected[key], (variant, key)
        # the seed's Adam ran at 0.001 whatever learning_rate said; no decay for Adam
        training = experiment.training
        assert (training.optimizer, training.learning_rate, training.decay) == ("adam", 0.001, 0.0), variant
        assert experiment.cnn.init == "uniform", variant  # the seed's init="uniform", U(-0.05, 0.05)


def test_every_paper_experiment_is_covered_here():
    names = set(Registry().experiment_names())
    assert PAPERS <= names
    assert PAPERS <= set(VECTOR_EXPERIMENTS) | set(AUDIO_EXPERIMENTS)
    # the _seed variants of the papers' experiments are exactly the corrected ones, all covered here
    seed_variants = {n for n in names if n.endswith("_seed") and n[:-len("_seed")] in PAPERS}
    assert seed_variants == {f"{n}_seed" for n in CORRECTED}
    assert seed_variants <= set(VECTOR_EXPERIMENTS) | set(AUDIO_EXPERIMENTS)
    assert "single-label-vector_seed" not in names  # the seed's typo changed nothing: no variant


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    """One data root per released layout, each with the stand-in of its datasets."""
    base = tmp_path_factory.mktemp("published")
    made = {}
    for ds in sorted({spec[0] for spec in VECTOR_EXPERIMENTS.values()}):
        made[ds] = write_standin(base / ds, ds)
    made["MuMu-tracks"] = write_patch_standin(base / "MuMu-tracks", "MuMu-tracks", 250)
    made["MSD-I-audio"] = write_patch_standin(base / "MSD-I-audio", "MSD-I", 15)
    return made


def _layers(model, kind):
    return [layer for layer in model.layers if isinstance(layer, kind)]


def _check_training(result):
    history = result.history
    assert result.epochs == len(history["loss"]) >= 1
    for key, values in history.items():
        assert all(math.isfinite(v) for v in values), (key, values)
    assert "val_loss" in history  # every published experiment validates (val split or held-out share)


def _check_dropout(model, rate):
    rates = {round(float(layer.rate), 6) for layer in _layers(model, keras.layers.Dropout)}
    assert rates <= {round(rate, 6)} or (rate == 0 and rates <= {0.0}), (rates, rate)


def _check_outputs(layout, result, n_out, n_items):
    experiment = result.experiment
    preds = fileio.load_npy(layout.prediction(result.model_id, "test"))
    ids = fileio.read_lines(layout.prediction_index(result.model_id, "test"))
    assert preds.shape == (n_items, n_out) and np.isfinite(preds).all()
    assert sorted(ids) == sorted(fileio.read_lines(layout.items_index("test", experiment.dataset.dataset)))
    activation = experiment.cnn.final_activation
    if activation == "softmax":
        np.testing.assert_allclose(preds.sum(axis=1), 1, atol=1e-4)
    elif activation == "sigmoid":
        assert (preds >= 0).all() and (preds <= 1).all()
    elif activation == "linear":  # the seed's L2-normalised linear head
        np.testing.assert_allclose(np.linalg.norm(preds, axis=1), 1, atol=1e-4)


def _test_predictions(layout, result):
    """The saved test predictions (float64), rows in the test items index's order."""
    ds = result.experiment.dataset.dataset
    ids = fileio.read_lines(layout.items_index("test", ds))
    row_of = {item: i for i, item in enumerate(fileio.read_lines(layout.prediction_index(result.model_id, "test")))}
    preds = np.asarray(fileio.load_npy(layout.prediction(result.model_id, "test")), dtype=np.float64)
    return preds[[row_of[item] for item in ids]]


def _ranked(scores):
    """Each row's columns by descending score, ties by ascending column (the library's rule)."""
    return np.argsort(-scores, axis=1, kind="stable")


def _average_precision_at(hits, n_relevant, k):
    """AP@k of one ranking's 0/1 ``hits`` (top first): precision at each hit within k, over min(n_relevant, k)."""
    top = hits[:k]
    return float(np.sum(np.cumsum(top) / np.arange(1, len(top) + 1) * top) / min(n_relevant, k))


def _check_metrics(layout, result, n_out):
    """The reported test metrics are those of the saved predictions, recomputed here by hand and with
    scikit-learn (not just numbers in [0, 1]: a metric of the wrong rows or classes would fail)."""
    experiment = result.experiment
    test = result.results["test"]
    ds = experiment.dataset
    assert test["evaluation"] == ds.evaluation
    preds = _test_predictions(layout, result)
    # a model whose output ignores its input would pass every check below on constant rows
    assert len(np.unique(preds.round(6), axis=0)) > 1, "every test item got the same prediction"
    if ds.evaluation == "recommendation":
        _check_recommendation_metrics(layout, experiment, test, preds)
        return
    if ds.fact == "class":
        scores, y = preds, fileio.load_npy(layout.y("test", "class", ds.dim, ds.dataset))
    else:  # PMI models are scored by cosine with the class factors, over the classes, not the 50 factors
        classes = fileio.load_npy(layout.class_factors(ds.fact, ds.dim, ds.dataset))
        scores, y = class_scores(preds, classes), fileio.load_npy(layout.y("test", "class", len(classes), ds.dataset))
        assert len(classes) == {"MuMu-albums": 250, "MuMu-tracks": 250}[ds.dataset]
    n_classes = scores.shape[1]
    assert test["n_classes"] == n_classes and len(test["per_class"]) == n_classes
    truth = y > 0
    both = [j for j in range(n_classes) if 0 < truth[:, j].sum() < len(truth)]  # AUC defined
    assert test["roc_auc"] == pytest.approx(np.mean([roc_auc_score(truth[:, j], scores[:, j]) for j in both]))
    ranked = _ranked(scores)
    if ds.evaluation == "multiclass":
        true_class, predicted = y.argmax(axis=1), scores.argmax(axis=1)
        assert test["accuracy"] == pytest.approx(accuracy_score(true_class, predicted))
        assert test["macro_f1"] == pytest.approx(f1_score(true_class, predicted, average="macro",
                                                          labels=range(n_classes), zero_division=0))
        assert test["confusion_matrix"] == confusion_matrix(true_class, predicted, labels=range(n_classes)).tolist()
        # MAP@k over the classes with one true class (k >= n_classes): the mean reciprocal rank
        assert test["k"] >= n_classes
        rank = np.array([list(row).index(t) + 1 for row, t in zip(ranked, true_class)])
        assert test["map_at_k"] == pytest.approx(np.mean(1 / rank))
        return
    threshold = np.asarray(test["threshold"])
    assert threshold.shape == (n_classes,)
    predicted = scores >= threshold
    assert test["accuracy"] == pytest.approx(accuracy_score(truth, predicted))  # exact match of the row
    assert test["macro_f1"] == pytest.approx(f1_score(truth, predicted, average="macro", zero_division=0))
    assert test["pr_auc"] == pytest.approx(np.mean([average_precision_score(truth[:, j], scores[:, j])
                                                     for j in both]))
    hits = np.take_along_axis(truth, ranked, axis=1)
    tagged = truth.any(axis=1)  # items without a positive class are left out of the rankings
    assert set(test["precision_at"]) == {"1", "3", "5"}
    for kk in (1, 3, 5):
        assert test["precision_at"][str(kk)] == pytest.approx(np.mean(hits[tagged, :kk].sum(axis=1) / kk)), kk
    k = test["k"]
    assert test["map_at_k"] == pytest.approx(np.mean([_average_precision_at(h, n, k) for h, n in
                                                      zip(hits[tagged], truth[tagged].sum(axis=1))]))
    # P/R/F at per-class thresholds chosen on val (F-max), one per class, saved with the results
    assert test["thresholds"]["mode"] == experiment.evaluating.thresholds == "per_class"


def _check_recommendation_metrics(layout, experiment, test, preds):
    """Our protocol's MAP@k and P@{1,3,5}, recomputed: each user with a held-out test item ranks the
    test items by (user factor) . (L2-normalised predicted item factor)."""
    ds = experiment.dataset
    held_out = fileio.load_sparse(layout.eval_matrix("test", ds.dataset)).T.toarray() > 0  # users x items
    users = fileio.load_npy(layout.user_factors(ds.fact, ds.dim, ds.dataset))
    items = preds / np.linalg.norm(preds, axis=1, keepdims=True)
    counted = held_out.any(axis=1)
    relevant, scores = held_out[counted], users[counted] @ items.T
    hits = np.take_along_axis(relevant, _ranked(scores), axis=1)
    ours = test["protocols"]["tartarus"] if "protocols" in test else test
    assert test["n_users"] == ours["n_users"] == int(counted.sum()) > 0
    k = test["k"]
    assert ours["map_at_k"] == pytest.approx(np.mean([_average_precision_at(h, n, k)
                                                 for h, n in zip(hits, relevant.sum(axis=1))]))
    n_items = held_out.shape[1]
    for kk in (1, 3, 5):
        assert ours["at"][str(kk)]["precision"] == pytest.approx(np.mean(hits[:, :kk].sum(axis=1) / min(kk, n_items)))
    assert {"random", "popularity"} <= set(test["baselines"])
    if experiment.evaluating.protocol == "both":  # the published ones: ours and the seed's users
        assert set(test["protocols"]) == {"tartarus", "seed"}
        # the seed counts every user (0 without a held-out item): never above ours
        assert test["protocols"]["seed"]["map_at_k"] <= test["protocols"]["tartarus"]["map_at_k"] + 1e-12


@pytest.mark.parametrize("name", sorted(VECTOR_EXPERIMENTS))
def test_vector_paper_experiment_has_the_seed_shapes(name, roots):
    ds, suffixes, hidden, n_out, dropout = VECTOR_EXPERIMENTS[name]
    overrides = list(EPOCHS)
    experiment = Registry().experiment(name)
    if experiment.dataset.dataset != ds:  # rec_dense on song vectors (see the table)
        assert name == "rec_dense"
        overrides.append(f"dataset.dataset={ds}")
    experiment = Registry().experiment(name, overrides)
    assert experiment.dataset.dataset == ds and experiment.dataset.dim == n_out
    layout = roots[ds]
    result = run(experiment, suffixes, layout, verbose=0)
    _check_training(result)
    model = load_model(layout.model_file(result.model_id))
    widths = _dims(ds, suffixes) if suffixes else [AB_FEATURES]
    assert [tuple(t.shape) for t in model.inputs] == [(None, w) for w in widths]
    assert tuple(model.outputs[0].shape) == (None, n_out)
    dense = _layers(model, keras.layers.Dense)
    assert sorted(layer.units for layer in dense[:-1]) == sorted(hidden)
    assert dense[-1].units == n_out
    _check_dropout(model, dropout)
    _check_outputs(layout, result, n_out, 10)
    _check_metrics(layout, result, n_out)
    if experiment.cnn.architecture == "6":
        _check_architecture_6(model)



@pytest.mark.parametrize("name, key", [("single-label-vector", "accuracy"), ("genres_discogs", "pr_auc"),
                                       ("rec_sparse", "map_at_k")])
def test_metric_checks_fail_on_a_wrong_number(name, key, roots):
    """The recomputation in _check_metrics is a real check: one reported metric off by 0.01 fails it."""
    ds, suffixes, _, n_out, _ = VECTOR_EXPERIMENTS[name]
    layout = roots[ds]
    result = run(Registry().experiment(name, EPOCHS), suffixes, layout, verbose=0)
    _check_metrics(layout, result, n_out)
    test = result.results["test"]
    (test["protocols"]["tartarus"] if "protocols" in test else test)[key] += 0.01
    with pytest.raises(AssertionError):
        _check_metrics(layout, result, n_out)

def _check_architecture_6(model):
    """The seed's architecture 6: three parallel branches (relu, tanh, sigmoid) straight on the
    input, concatenated, dropout, then one relu layer of n_dense_2 units."""
    branches = [layer for layer in _layers(model, keras.layers.Dense) if layer.units == 2048]
    assert sorted(keras.activations.serialize(b.activation) for b in branches) == ["relu", "sigmoid", "tanh"]
    for branch in branches:  # no dropout on the input: each branch reads the features themselves
        assert branch.input is model.inputs[0]
    (second,) = [layer for layer in _layers(model, keras.layers.Dense) if layer.units == 1024]
    assert keras.activations.serialize(second.activation) == "relu"
    assert second.input.shape[-1] == 3 * 2048


@pytest.mark.parametrize("name", sorted(AUDIO_EXPERIMENTS))
def test_audio_paper_experiment_has_the_seed_shapes(name, roots):
    ds, filters, kernels, n_out, dropout = AUDIO_EXPERIMENTS[name]
    layout = roots["MuMu-tracks" if ds == "MuMu-tracks" else "MSD-I-audio"]
    experiment = Registry().experiment(name, EPOCHS)
    assert experiment.dataset.dataset == ds and experiment.dataset.dim == n_out
    result = run(experiment, (), layout, verbose=0)
    _check_training(result)
    model = load_model(layout.model_file(result.model_id))
    assert tuple(model.inputs[0].shape) == (None, 322, 96, 1)
    convs = _layers(model, keras.layers.Conv2D)
    assert [c.filters for c in convs] == filters
    assert [tuple(c.kernel_size) for c in convs] == kernels
    dense = _layers(model, keras.layers.Dense)
    assert [d.units for d in dense] == [n_out]  # n_dense = 0: no hidden dense layer
    _check_dropout(model, dropout)
    _check_outputs(layout, result, n_out, 10)
    _check_metrics(layout, result, n_out)


def test_published_experiments_train_with_the_seeds_protocol():
    """The seed's EarlyStopping(patience=4) on val accuracy (softmax) or val loss, last weights kept."""
    registry = Registry()
    for name in PAPERS:
        training = registry.experiment(name).training
        assert (training.patience, training.monitor, training.restore_best) == (4, "auto", False), name
        assert training.early_stopping and training.n_epochs == 100 and training.n_minibatch == 32, name


@pytest.mark.parametrize("name, monitored", [("single-label-vector", "val_accuracy"),
                                             ("genres_discogs", "val_loss")])
def test_early_stopping_follows_the_seeds_patience(name, monitored, roots):
    """With nothing to learn (a learning rate of 1e-30, too small to change a float32 weight; 0 is out
    of range) the monitored value never improves after the first epoch, so training stops after
    exactly 1 + 4 epochs, the seed's patience."""
    ds, suffixes = VECTOR_EXPERIMENTS[name][:2]
    experiment = Registry().experiment(name, ["training.n_epochs=30", "training.learning_rate=1e-30",
                                              "training.n_minibatch=8"])
    result = run(experiment, suffixes, roots[ds], verbose=0, evaluate=False)
    assert result.epochs == 1 + 4
    assert len(set(result.history[monitored])) == 1  # the monitored value, unchanged every epoch
    _check_training(result)


def test_cosine_experiments_are_scored_by_cosine_with_the_class_factors():
    rng = np.random.default_rng(0)
    classes = rng.normal(size=(5, 4))
    predicted = rng.normal(size=(6, 4))
    expected = np.array([[p @ c / np.linalg.norm(p) / np.linalg.norm(c) for c in classes] for p in predicted])
    np.testing.assert_allclose(class_scores(predicted, classes), expected, atol=1e-12)


def test_multilabel_auc_uses_the_same_classes_for_truth_and_predictions():
    """Classes without positives in the split are left out of both the truth and the scores."""
    truth = np.array([[1, 0, 0, 1], [0, 0, 1, 1], [1, 0, 1, 0], [0, 0, 0, 1]])
    scores = np.array([[0.9, 0.8, 0.1, 0.7], [0.2, 0.9, 0.8, 0.6], [0.7, 0.1, 0.6, 0.2], [0.1, 0.3, 0.2, 0.9]])
    res = evaluate_scores(truth, scores, "multilabel", k=4)
    kept = [0, 2, 3]  # class 1 has no positive item
    expected = np.mean([roc_auc_score(truth[:, j], scores[:, j]) for j in kept])
    assert res["roc_auc"] == pytest.approx(expected) and res["auc_skipped"] == ["1"]
    # shifting the scores by one column (the seed's misalignment) would give another number
    shifted = np.mean([roc_auc_score(truth[:, j], scores[:, j + 1 if j < 3 else j]) for j in kept])
    assert shifted != pytest.approx(expected)
