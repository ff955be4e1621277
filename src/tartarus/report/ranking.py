"""Recommendation data for the report pages: MAP@k and P@k over the cut-off k, beside the random and
popularity baselines, and a sample of users' recommended items. Reads files, writes nothing.

The users, items and held-out relevance are those of the evaluation itself
(:func:`tartarus.evaluate.recommendation_inputs`), so the value at ``evaluating.map_k`` is the
results JSON's ``map_at_k`` (protocol ``tartarus``: users with a held-out item), bit for bit.
"""

from __future__ import annotations

import numpy as np

from .. import metrics as M
from ..checks import check_int
from ..errors import DataMismatch

DEFAULT_KS = (1, 2, 3, 5, 10, 20, 50, 100, 200, 500)


def _cutoffs(ks, map_k, n_items):
    """The sorted cut-offs of the curves: ``ks`` up to ``n_items``, and ``map_k`` (at most ``n_items``)."""
    ks = DEFAULT_KS if ks is None else ks
    wanted = {check_int("k", k, minimum=1) for k in ks}
    return sorted({k for k in wanted if k <= n_items} | {min(int(map_k), n_items)})


def _curve_values(relevance, scores, ks):
    """MAP@k and P@k at every cut-off of ``ks`` for users ranked by ``scores``, under the protocol
    ``tartarus``; each user's top ``max(ks)`` is found once and every k is read from it.

    relevance : (n_users, n_items) CSR, > 0 relevant; scores : a ``scores(start, stop)`` callable
    (:class:`M.FactorScores`, the baselines). The users go in the chunks of the evaluation
    (:data:`M.CHUNK_ELEMENTS` scores each), and every value is computed as
    :func:`M.ranking_rows` and :class:`M.RankingTotals` do, so that the value at the evaluation's k
    is its ``map_at_k`` and ``precision`` exactly. Returns ``({"map_at_k": [...], "precision":
    [...]}, n_users counted)``.
    """
    n, c = relevance.shape
    depth = min(max(ks), c)
    ranks = np.arange(1, depth + 1)
    step = max(1, M.CHUNK_ELEMENTS // max(1, c))
    ap = np.zeros((n, len(ks)))  # per user, as RankingTotals sums them
    found = np.zeros(len(ks), dtype=np.int64)
    for start in range(0, n, step):
        stop = min(n, start + step)
        rel = relevance[start:stop].toarray()
        n_rel = (rel > 0).sum(axis=1)
        rows = np.flatnonzero(n_rel > 0)  # the users counted: only they are ranked
        if not len(rows):
            continue
        sco = np.asarray(scores(start, stop), dtype=np.float64)[rows]
        top = M.top_k(sco, depth)
        hits = np.take_along_axis(rel[rows], top, axis=1) > 0
        for i, k in enumerate(ks):
            km = min(k, depth)
            # the expression of metrics.ranking_rows, prefix by prefix, for the same bits
            total = (np.cumsum(hits[:, :km], axis=1) / ranks[:km] * hits[:, :km]).sum(axis=1)
            ap[start + rows, i] = total / np.minimum(n_rel[rows], k)
            found[i] += int(hits[:, :km].sum())
    counted = int((M.relevant_counts(relevance) > 0).sum())
    if counted == 0:
        raise DataMismatch("relevance: no user has a held-out item: no ranking curve to draw")
    sums = np.zeros(len(ks))
    for g in range(0, n, M.RankingTotals.GROUP):  # fixed groups of users, as RankingTotals adds them
        sums += np.add.reduce(ap[g:g + M.RankingTotals.GROUP], axis=0)
    return ({"map_at_k": [float(x) for x in sums / counted],
             "precision": [float(found[i] / min(k, depth) / counted) for i, k in enumerate(ks)]}, counted)


def ranking_curves(layout, model_id, set_="test", experiment=None, ks=None, seed=0, inputs=None):
    """MAP@k and precision@k of ``model_id`` on ``set_`` over the cut-off k, with both baselines.

    ks : the cut-offs, default 1, 2, 3, 5, 10, 20, 50, 100, 200, 500; those above the number of
        items are dropped and ``evaluating.map_k`` (at most the number of items) is added, so the
        curves hold the evaluation's headline value. seed : the random baseline's, as in
        :func:`tartarus.evaluate.evaluate_recommendation`. inputs : the model's
        :func:`tartarus.evaluate.recommendation_inputs` on ``set_`` when already read.
    Counted users: those with a held-out item (protocol ``tartarus``); P@k divides by
    ``min(k, n_items)``. Returns ``{"k": [...], "model": {"map_at_k": [...], "precision": [...]},
    "random": {...}, "popularity": {...}, "n_users": int, "n_items": int, "map_k": int,
    "model_id": str}``.
    """
    from ..evaluate import recommendation_inputs
    from ..store import read_record

    experiment = experiment or read_record(layout, model_id).load_experiment()
    inputs = inputs or recommendation_inputs(layout, model_id, set_, experiment)
    n_items = inputs.relevance.shape[1]
    map_k = experiment.evaluating.map_k
    cuts = _cutoffs(ks, map_k, n_items)
    out = {"k": cuts}
    sources = {"model": inputs.scores(), **inputs.baselines(seed)}
    for name, scores in sources.items():
        out[name], n_users = _curve_values(inputs.relevance, scores, cuts)
    out.update(n_users=n_users, n_items=int(n_items), map_k=int(map_k), model_id=model_id)
    return out


def sample_recommendations(layout, model_id, set_="test", experiment=None, n_users=5, n=10, seed=0, inputs=None):
    """The top ``n`` items of ``n_users`` users with held-out items, chosen at random with ``seed``.

    Returns one dict a user, in their order among the evaluated users: ``{"user": id (the line of
    ``layout.interaction_users``, else the user's row number), "held_out": [item ids, most plays
    first], "recommended": [{"item": id, "score": float, "hit": bool}, ...]}`` with ``hit`` true
    for a held-out item. Scores are the evaluation's: the user's factor times the normalised
    predicted item factor. inputs : as for :func:`ranking_curves`.
    """
    from ..evaluate import recommendation_inputs

    n_users = check_int("n_users", n_users, minimum=0)
    n = check_int("n", n, minimum=1)
    inputs = inputs or recommendation_inputs(layout, model_id, set_, experiment)
    rel = inputs.relevance
    candidates = np.flatnonzero(M.relevant_counts(rel) > 0)
    picked = np.sort(np.random.default_rng(seed).choice(candidates, size=min(n_users, len(candidates)),
                                                        replace=False))
    scores = inputs.scores()
    out = []
    for row in picked:
        row = int(row)
        counts = rel[row].toarray().ravel()
        held = np.flatnonzero(counts > 0)
        held = held[np.argsort(-counts[held], kind="stable")]
        score = scores(row, row + 1)
        top = M.top_k(score, n)[0]
        out.append({"user": inputs.user_ids[row] if inputs.user_ids is not None else int(inputs.user_rows[row]),
                    "held_out": [inputs.item_ids[j] for j in held],
                    "recommended": [{"item": inputs.item_ids[j], "score": float(score[0, j]),
                                     "hit": bool(counts[j] > 0)} for j in top]})
    return out
