"""Every paper experiment of the registry, end to end (one epoch) on stand-ins of the released layouts."""

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from tests.standins import write_patch_standin, write_standin
from tartarus import fileio
from tartarus.config import Registry
from tartarus.evaluate import class_scores, evaluate_scores
from tartarus.train import run

# experiment -> (dataset, input suffixes in META_SUFFIX order)
VECTOR_EXPERIMENTS = {
    "rec_sparse": ("MSD-A-artists", ["sem-bio"]),
    "rec_dense": ("MSD-A-artists", ["sem-bio"]),
    "rec_dense_seed": ("MSD-A-artists", ["sem-bio"]),
    "rec_multi": ("MSD-A-songs", ["audio-emb", "a-sem-emb"]),
    "logistic_multilabel_vector": ("MuMu-albums", ["model_audio"]),
    "cosine_multilabel_vector": ("MuMu-albums", ["model_visual"]),
    "logistic_multilabel_bi": ("MuMu-albums", ["VSM", "model_audio"]),
    "cosine_multilabel_bi": ("MuMu-albums", ["VSM", "model_audio"]),
    "logistic_multilabel_tri": ("MuMu-albums", ["VSM", "model_audio", "model_visual"]),
    "cosine_multilabel_tri": ("MuMu-albums", ["VSM-SEM", "model_audio", "model_visual"]),
    "logistic_text_multilabel": ("MuMu-albums", ["VSM"]),
    "cosine_text_multilabel": ("MuMu-albums", ["VSM-SEM"]),
    "cosine_text_multilabel_seed": ("MuMu-albums", ["VSM-SEM"]),
    "single-label-vector": ("MSD-I", ["model_text"]),
    "single-label-vector_seed": ("MSD-I", ["model_text"]),
    "single-label-multimodal": ("MSD-I", ["model_audio", "model_text"]),
    "single-label-all": ("MSD-I", ["model_audio", "model_text", "model_visual", "audio-emb"]),
    "genres_allmusic": ("AB-allmusic", ["ab-features"]),
    "genres_discogs": ("AB-discogs", ["ab-features"]),
    "genres_lastfm": ("AB-lastfm", ["ab-features"]),
    "genres_tagtraum": ("AB-tagtraum", ["ab-features"]),
    "genres_allmusic_multimodal": ("AB-allmusic", ["ab-features", "ab-text"]),
    "genres_discogs_multimodal": ("AB-discogs", ["ab-features", "ab-text"]),
    "genres_lastfm_multimodal": ("AB-lastfm", ["ab-features", "ab-text"]),
    "genres_tagtraum_multimodal": ("AB-tagtraum", ["ab-features", "ab-text"]),
    "genres_discogs_singlemodal": ("AB-discogs", ["ab-features"]),
}
AUDIO_EXPERIMENTS = {
    "logistic_audio_multilabel": "MuMu-tracks",
    "cosine_audio_multilabel": "MuMu-tracks",
    "cosine_audio_multilabel_seed": "MuMu-tracks",
    "single-label-audio": "MSD-I",
}


def test_every_paper_experiment_is_covered_here():
    names = set(Registry().experiment_names())
    papers = {"rec_sparse", "rec_dense", "rec_multi", "logistic_multilabel_vector", "logistic_multilabel_bi",
              "logistic_multilabel_tri", "cosine_multilabel_vector", "cosine_multilabel_bi",
              "cosine_multilabel_tri", "logistic_text_multilabel", "cosine_text_multilabel",
              "logistic_audio_multilabel", "cosine_audio_multilabel", "single-label-audio",
              "single-label-vector", "single-label-multimodal", "single-label-all",
              "genres_allmusic", "genres_discogs", "genres_lastfm", "genres_tagtraum",
              "genres_allmusic_multimodal", "genres_discogs_multimodal", "genres_lastfm_multimodal",
              "genres_tagtraum_multimodal", "genres_discogs_singlemodal"}
    assert papers <= names
    assert papers <= set(VECTOR_EXPERIMENTS) | set(AUDIO_EXPERIMENTS)


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    """One data root per released layout, each with the stand-in of its datasets."""
    base = tmp_path_factory.mktemp("published")
    made = {}
    for ds in sorted({ds for ds, _ in VECTOR_EXPERIMENTS.values()}):
        made[ds] = write_standin(base / ds, ds)
    made["MuMu-tracks"] = write_patch_standin(base / "MuMu-tracks", "MuMu-tracks", 250)
    made["MSD-I-audio"] = write_patch_standin(base / "MSD-I-audio", "MSD-I", 15)
    return made


def _check(result, experiment):
    test = result.results["test"]
    assert result.epochs == 1
    if experiment.dataset.evaluation == "recommendation":
        assert test["n_users"] > 0 and 0 <= test["map"] <= 1 and "popularity" in test["baselines"]
        return
    n_classes = {15: 15, 21: 21, 30: 30, 31: 31}.get(experiment.dataset.dim, 250)
    assert test["n_classes"] == n_classes  # PMI models are scored over the classes, not the 50 factors
    assert 0 <= test["accuracy"] <= 1
    if experiment.dataset.evaluation == "multilabel":
        assert test["roc_auc"] is None or 0 <= test["roc_auc"] <= 1
        assert set(test["precision_at"]) == {"1", "3", "5"}


@pytest.mark.parametrize("name", sorted(VECTOR_EXPERIMENTS))
def test_vector_paper_experiment_runs_end_to_end(name, roots):
    ds, suffixes = VECTOR_EXPERIMENTS[name]
    experiment = Registry().experiment(name, ["training.n_epochs=1", "training.n_minibatch=8"])
    assert experiment.dataset.dataset == ds
    result = run(experiment, suffixes, roots[ds], verbose=0)
    _check(result, experiment)


@pytest.mark.parametrize("name", sorted(AUDIO_EXPERIMENTS))
def test_audio_paper_experiment_runs_end_to_end(name, roots):
    ds = AUDIO_EXPERIMENTS[name]
    layout = roots["MuMu-tracks" if ds == "MuMu-tracks" else "MSD-I-audio"]
    experiment = Registry().experiment(name, ["training.n_epochs=1", "training.n_minibatch=8"])
    result = run(experiment, (), layout, verbose=0)
    _check(result, experiment)


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
