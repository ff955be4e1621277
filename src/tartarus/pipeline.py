"""Orchestration: train -> predict -> evaluate, and the seed's dummy chains built from it.

``run_experiment`` is ``tartarus run NAME``: :func:`tartarus.train.run` trains (or resumes) and
records a model, :func:`evaluate_trained` then predicts the evaluated splits (writing the
predictions) and evaluates them (writing ``results/``). Training, prediction and evaluation know
nothing of each other; only this module composes them.

The dummy chain (``tartarus pipeline dummy``): audio, text and fused models on the dummy data,
compared. Equivalent to::

    tartarus dummy-data && tartarus spectrograms DUMMY && tartarus patches DUMMY
    tartarus text vsm DUMMY && tartarus text w2v DUMMY
    python run_experiments.py dummy_audio                 # model_1 on a fresh data root
    python run_experiments.py dummy_text_vsm bow          # model_2
    python run_experiments.py dummy_text_w2v w2v          # model_3
    python predict.py model_1 -p -l 9 -s {train,val,test}
    python predict.py model_2 -l 5 -s {train,val,test}
    python run_experiments.py dummy_multimodal model_1-pred_9 model_2-pred_5

and, for cold-start recommendation (``tartarus pipeline dummy-rec``)::

    tartarus factors DUMMY --method als --dim 4
    python run_experiments.py dummy_audio_als             # audio CNN to the train items' factors
    python run_experiments.py dummy_text_als bow          # rec_sparse on tf-idf
    python predict.py model_A -p -l flat -s {train,val,test}
    python predict.py model_B -l dense_2 -s {train,val,test}
    python run_experiments.py dummy_multi_als model_A-pred_flat model_B-pred_dense_2
"""

from __future__ import annotations

from contextlib import contextmanager
from functools import partial

from .fileio import read_items_index, write_tsv
from .layout import SETS, DataLayout
from .store import has_record, read_record

COLUMNS = ("model", "experiment", "inputs", "accuracy", "macro_f1", "roc_auc", "pr_auc", "map_at_k")
REC_COLUMNS = ("model", "experiment", "inputs", "map_at_k", "precision", "ndcg", "adiv", "roc_auc", "pr_auc")
REC_DIM = 4  # the dummy's 3 taste groups fit in 4 ALS factors; more dims add per-item noise


def run_experiment(experiment, suffixes=(), layout=None, resume=None, verbose=1, evaluate=True,
                   eval_sets=("test",), overrides=(), protocol=None, report=False):
    """Train ``experiment`` (or continue model ``resume``), then predict and evaluate ``eval_sets``.

    The arguments of :func:`tartarus.train.run`, and: evaluate : predict and evaluate after
    training (``tartarus run --no-eval``: false); eval_sets : the splits evaluated; protocol : the
    recommendation protocol (default: the experiment's ``evaluating.protocol``); report : write the
    model's report page after evaluating (``tartarus run`` does; :func:`tartarus.report.write_report`).
    Returns the TrainResult with ``results`` = ``{set: metrics}`` (empty without evaluation, or
    when a resume found nothing to do).
    """
    from .train import run

    layout = layout if isinstance(layout, DataLayout) else DataLayout(layout)
    if evaluate:
        from .evaluate import check_protocol
        check_protocol(protocol)
        # a duplicate id in an evaluated split fails before training, not after; the trained
        # splits first, so their errors come in the order training itself would raise them
        sets = tuple(dict.fromkeys(("train", "val", *eval_sets)))
        if experiment is not None:
            check_split_indexes(layout, experiment.dataset.dataset, sets)
        elif has_record(layout, resume):
            check_split_indexes(layout, read_record(layout, resume).load_experiment().dataset.dataset, sets)
    result = run(experiment, suffixes, layout, resume=resume, verbose=verbose, overrides=overrides)
    if evaluate and not result.nothing_to_do:
        result.results = evaluate_trained(layout, result.model_id, eval_sets, verbose=verbose, protocol=protocol)
        if report:
            from .report import write_report
            path = write_report(layout, result.model_id)
            if verbose:
                print(f"{result.model_id}: report -> {path}")
    return result


def check_split_indexes(layout, ds, sets):
    """Read the items index of each of ``sets`` that exists (DataMismatch on a duplicate or empty id)."""
    for set_ in sets:
        index = layout.items_index(set_, ds)
        if index.exists():
            read_items_index(index)


def evaluate_trained(layout, model_id, sets=("test",), verbose=1, protocol=None, device="cpu", scheduler=None,
                     auc=None):
    """Predict a trained model on the splits its evaluation reads (writing the predictions), then
    evaluate ``sets`` (writing ``results/``); returns ``{set: metrics}``. ``tartarus evaluate``.
    device : where recommendation scores are ranked (``metrics.SCORE_DEVICES``; see ``FactorScores``).
    scheduler : a Dask scheduler address, or a connected ``distributed.Client`` (None: here): the
    recommendation metrics are then computed on its workers by blocks of users (each ranks with
    ``device`` as resolved here), with the same numbers; prediction stays here. The workers need no
    data root: the factors and held-out rows are sent to them."""
    from .checks import check_choice
    from .config.schema import SCORE_DEVICES
    from .evaluate import check_protocol, evaluate_model, sets_to_predict
    from .predict import predict

    layout = layout if isinstance(layout, DataLayout) else DataLayout(layout)
    check_protocol(protocol)  # a bad value fails before any prediction
    check_choice("device", device, SCORE_DEVICES)
    with _block_map(scheduler) as block_map:  # an unreachable scheduler fails first
        experiment = read_record(layout, model_id).load_experiment()
        predict(layout, model_id, sets_to_predict(layout, experiment, sets))
        return evaluate_model(layout, model_id, sets, verbose=verbose, protocol=protocol, experiment=experiment,
                              device=device, block_map=block_map, auc=auc)


@contextmanager
def _block_map(address):
    """None without a scheduler address (evaluate here); with one, ``block_map(fn, blocks, *shared)``
    on that Dask cluster (``scheduler.map_unordered``), its client closed on exit."""
    from .scheduler import map_unordered, on_cluster

    with on_cluster(address) as client:  # the workers read no file: no data root to check
        yield None if client is None else partial(map_unordered, client)


def make_factors(layout, ds, params="als", dim=200, seed=0, targets_all_items=False, fact=None):
    """``tartarus factors DS``: latent factors of ``ds``'s interactions as targets; a FactorReport.

    The stage's steps, each explicit: import the triplets the dataset ships when it has no import
    yet (``interactions.import_shipped_interactions``), load the interactions, split them by the
    items_index files (``splits.cold_start_split``), write the held-out ``matrix_val`` /
    ``matrix_test`` (``splits.write_held_out``), factorise (``factors.factorize``, which writes
    the factors). Factors from class labels (PMI ``pmi_source = "class"``) use none of these.
    params: ``factors.AlsParams`` / ``PmiParams`` or a method name (its defaults).
    """
    from .factors import check_factor_run, factorize
    from .interactions import import_shipped_interactions, load_interactions
    from .splits import cold_start_split, read_item_splits, write_held_out

    params, dim, seed, fact = check_factor_run(params, dim, seed, fact)  # before anything is written
    split = None
    if params.uses_interactions:
        import_shipped_interactions(layout, ds)
        matrix, users, items = load_interactions(layout, ds)
        split = cold_start_split(ds, matrix, users, items, read_item_splits(layout, ds))
        write_held_out(layout, split)
    return factorize(layout, ds, params, dim, seed, split=split, targets_all_items=targets_all_items, fact=fact)


def prepare_dummy(layout, registry, verbose=1):
    """Dummy data, spectrograms, patches and text features (each step skips what is already there)."""
    from . import text
    from .audio.patches import create_patches
    from .audio.runner import compute_spectrograms
    from .datasets.dummy import generate_dummy

    report = generate_dummy(layout.root)
    entry = registry.dataset("DUMMY")
    spectro = compute_spectrograms(layout, entry, progress=verbose > 0)
    create_patches(layout, entry)
    text.build_vsm(layout, entry.name, max_df=entry.max_df, min_df=entry.min_df,
                   max_features=entry.max_features or None, n_words=entry.n_words)
    text.build_w2v(layout, entry.name, sequence_length=entry.sequence_length, embedding_dim=entry.embedding_dim,
                   n_epochs=entry.w2v_epochs, seed=entry.seed, skipgram=entry.w2v_skipgram)
    if verbose:
        print(report.summary())
        print(spectro.summary())


def run_dummy_pipeline(layout, registry, n_epochs=None, verbose=1, devices=None):
    """Train the audio, text and fused dummy experiments; print and return the comparison table."""
    from .predict import predict

    prepare_dummy(layout, registry, verbose)
    train = _trainer(layout, registry, n_epochs, verbose, devices)
    audio = train("dummy_audio")
    vsm = train("dummy_text_vsm", "bow")
    w2v = train("dummy_text_w2v", "w2v")
    predict(layout, audio.model_id, SETS, layer=9)
    predict(layout, vsm.model_id, SETS, layer=5)
    embeddings = (layout.embedding_suffix(audio.model_id, 9), layout.embedding_suffix(vsm.model_id, 5))
    fused = train("dummy_multimodal", *embeddings)

    rows = []
    for result, inputs in ((audio, "audio patches"), (vsm, "bow"), (w2v, "w2v"), (fused, " + ".join(embeddings))):
        metrics = result.results["test"]
        rows.append([result.model_id, result.experiment.name, inputs,
                     *(metrics.get(key) for key in COLUMNS[3:])])
    return _write_comparison(layout, "dummy", COLUMNS, rows, verbose)


def run_dummy_recommendation(layout, registry, n_epochs=None, verbose=1, devices=None):
    """Cold start on the dummy data: ALS factors, audio, text and fused models to them, compared.

    Returns the rows of ``results/comparison_dummy-rec.tsv``: one per model, then the random and
    popularity baselines of the same test users (MAP@k and the other ranking metrics).
    """
    from .predict import predict

    prepare_dummy(layout, registry, verbose)
    report = make_factors(layout, "DUMMY", "als", REC_DIM, seed=0)
    if verbose:
        print(report.summary())
    train = _trainer(layout, registry, n_epochs, verbose, devices)
    audio = train("dummy_audio_als")
    text = train("dummy_text_als", "bow")
    predict(layout, audio.model_id, SETS, layer="flat")
    predict(layout, text.model_id, SETS, layer="dense_2")
    embeddings = (layout.embedding_suffix(audio.model_id, "flat"), layout.embedding_suffix(text.model_id, "dense_2"))
    fused = train("dummy_multi_als", *embeddings)

    rows = []
    for result, inputs in ((audio, "audio patches"), (text, "bow"), (fused, " + ".join(embeddings))):
        metrics = result.results["test"]
        rows.append([result.model_id, result.experiment.name, inputs, *(metrics[key] for key in REC_COLUMNS[3:])])
    for name, metrics in audio.results["test"]["baselines"].items():
        rows.append([name, "baseline", "-", *(metrics[key] for key in REC_COLUMNS[3:])])
    return _write_comparison(layout, "dummy-rec", REC_COLUMNS, rows, verbose)


def _trainer(layout, registry, n_epochs, verbose, devices=None):
    """``train(name, *suffixes)``: run a registry experiment, evaluated on test (``n_epochs`` overriding,
    if given; ``devices``: data-parallel on that many devices, as ``--devices``)."""
    from .distribution import devices_overrides
    sets = ([f"training.n_epochs={n_epochs}"] if n_epochs else []) + devices_overrides(devices)
    return lambda name, *suffixes: run_experiment(registry.experiment(name, sets), suffixes, layout, verbose=verbose)


def _write_comparison(layout, name, columns, rows, verbose):
    """Write ``results/comparison_{name}.tsv`` (4 decimals), print it when ``verbose``; return ``rows``."""
    write_tsv(layout.comparison_table(name),
              [columns] + [[f"{v:.4f}" if isinstance(v, float) else v for v in row] for row in rows])
    if verbose:
        print()
        print(format_comparison(rows, columns))
    return rows


def format_comparison(rows, columns=COLUMNS):
    """The comparison table as text: one line a model, test-set metrics."""
    width = max(len(str(r[1])) for r in rows)
    head = f"{'model':<10} {'experiment':<{width}} " + " ".join(f"{c:>9}" for c in columns[3:]) + "  inputs"
    lines = [head]
    for r in rows:
        cells = " ".join("        -" if v is None else f"{v:>9.4f}" for v in r[3:])
        lines.append(f"{r[0]:<10} {r[1]:<{width}} {cells}  {r[2]}")
    return "\n".join(lines)
