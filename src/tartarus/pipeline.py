"""The seed's dummy chain in one call: audio, text and fused models on the dummy data, compared.

Equivalent to::

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

from .fileio import write_tsv
from .layout import SETS

COLUMNS = ("model", "experiment", "inputs", "accuracy", "macro_f1", "roc_auc", "pr_auc", "map_at_k")
REC_COLUMNS = ("model", "experiment", "inputs", "map", "precision", "ndcg", "adiv", "roc_auc", "pr_auc")
REC_DIM = 4  # the dummy's 3 taste groups fit in 4 ALS factors; more dims add per-item noise


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
                   epochs=entry.w2v_epochs, seed=entry.seed, skipgram=entry.w2v_skipgram)
    if verbose:
        print(report.summary())
        print(spectro.summary())


def run_dummy_pipeline(layout, registry, n_epochs=None, verbose=1):
    """Train the audio, text and fused dummy experiments; print and return the comparison table."""
    from .predict import predict

    prepare_dummy(layout, registry, verbose)
    train = _trainer(layout, registry, n_epochs, verbose)
    audio = train("dummy_audio")
    vsm = train("dummy_text_vsm", "bow")
    w2v = train("dummy_text_w2v", "w2v")
    predict(layout, audio.model_id, SETS, layer=9)
    predict(layout, vsm.model_id, SETS, layer=5)
    fused = train("dummy_multimodal", f"{audio.model_id}-pred_9", f"{vsm.model_id}-pred_5")

    rows = []
    for result, inputs in ((audio, "audio patches"), (vsm, "bow"), (w2v, "w2v"),
                           (fused, f"{audio.model_id}-pred_9 + {vsm.model_id}-pred_5")):
        metrics = result.results["test"]
        rows.append([result.model_id, result.experiment.name, inputs,
                     *(metrics.get(key) for key in COLUMNS[3:])])
    return _write_comparison(layout, "dummy", COLUMNS, rows, verbose)


def run_dummy_recommendation(layout, registry, n_epochs=None, verbose=1):
    """Cold start on the dummy data: ALS factors, audio, text and fused models to them, compared.

    Returns the rows of ``results/comparison_dummy-rec.tsv``: one per model, then the random and
    popularity baselines of the same test users (MAP@k and the other ranking metrics).
    """
    from .factors import factorize
    from .predict import predict

    prepare_dummy(layout, registry, verbose)
    report = factorize(layout, "DUMMY", "als", REC_DIM, seed=0)
    if verbose:
        print(report.summary())
    train = _trainer(layout, registry, n_epochs, verbose)
    audio = train("dummy_audio_als")
    text = train("dummy_text_als", "bow")
    predict(layout, audio.model_id, SETS, layer="flat")
    predict(layout, text.model_id, SETS, layer="dense_2")
    fused = train("dummy_multi_als", f"{audio.model_id}-pred_flat", f"{text.model_id}-pred_dense_2")

    rows = []
    for result, inputs in ((audio, "audio patches"), (text, "bow"),
                           (fused, f"{audio.model_id}-pred_flat + {text.model_id}-pred_dense_2")):
        metrics = result.results["test"]
        rows.append([result.model_id, result.experiment.name, inputs, *(metrics[key] for key in REC_COLUMNS[3:])])
    for name, metrics in audio.results["test"]["baselines"].items():
        rows.append([name, "baseline", "-", *(metrics[key] for key in REC_COLUMNS[3:])])
    return _write_comparison(layout, "dummy-rec", REC_COLUMNS, rows, verbose)


def _trainer(layout, registry, n_epochs, verbose):
    """``train(name, *suffixes)``: run a registry experiment (``n_epochs`` overriding, if given)."""
    from .train import run
    sets = [f"training.n_epochs={n_epochs}"] if n_epochs else []
    return lambda name, *suffixes: run(registry.experiment(name, sets), suffixes, layout, verbose=verbose)


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
