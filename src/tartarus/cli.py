"""The ``tartarus`` command line: a thin layer that parses arguments and calls library functions.

The root scripts (``run_experiments.py``, ``predict.py``) and ``audio_processing/*.py`` call ``main``
with their subcommand, so the seed's commands work as written.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter off the terminal
logging.getLogger("tensorflow").setLevel(logging.ERROR)  # its retracing notes are not the user's business

from .errors import ConfigError, TartarusError  # noqa: E402
from .layout import SETS, DataLayout  # noqa: E402


def _common():
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--data-dir", default=None,
                   help="data root (default: $TARTARUS_DATA or ./data)")
    p.add_argument("--experiments", default=None,
                   help="folder of experiment TOML files (default: $TARTARUS_EXPERIMENTS or ./experiments)")
    return p


def _registry(args):
    from .config import Registry
    return Registry(args.experiments)


def _layout(args):
    return DataLayout(args.data_dir)


# ------------------------------------------------------------------------------- commands
def cmd_list(args):
    reg = _registry(args)
    print("experiments:")
    for name in reg.experiment_names():
        print(f"  {name:<24} {reg.description(name)}")
    print("datasets:")
    for name in reg.dataset_names():
        print(f"  {name:<24} {reg.description(name)}")


def cmd_show(args):
    reg = _registry(args)
    note = ""
    if args.name in reg.dataset_names():
        entry = reg.dataset(args.name).to_dict()
    else:
        try:
            entry = reg.experiment(args.name, args.set).to_dict()
        except ConfigError as exc:
            if "missing value" not in str(exc) or args.set:
                raise
            # an abstract base: show what it sets, and what an entry built on it must add
            entry, note = reg.raw_experiment(args.name), f"# not runnable as it is: {exc}"
    print(f"# {args.name}  (from {reg.source(args.name)})")
    if note:
        print(note)
    print(json.dumps(entry, indent=2))


def cmd_run(args):
    from .train import run
    layout = _layout(args)
    experiment = None if args.resume else _registry(args).experiment(args.name, args.set)
    if args.resume and args.name and args.name != "-":
        print(f"resuming {args.resume} (its saved config is used; {args.name!r} is ignored)")
    result = run(experiment, tuple(args.suffixes), layout, resume=args.resume, evaluate=not args.no_eval)
    print(f"{result.model_id}: done after {result.epochs} epoch(s); model in {layout.model_dir(result.model_id)}")


def cmd_predict(args):
    from .predict import predict
    layout = _layout(args)
    sets = args.sets or ["test"]
    for set_, out, index, result in predict(layout, args.model, sets, args.layer, args.aggregation):
        print(f"{args.model} {set_}: {result.values.shape[0]} items x {result.values.shape[1]} -> {out} (+ {index.name})")
        if result.missing_items:
            print(f"  {len(result.missing_items)} item(s) without patches left out: "
                  + ", ".join(result.missing_items[:10]))


def cmd_evaluate(args):
    from .evaluate import evaluate_model
    evaluate_model(_layout(args), args.model, args.sets or ["test"], verbose=1)


def cmd_recommend(args):
    from .recommend import format_hits, recommend_items, recommend_users
    layout = _layout(args)
    if args.user is not None:
        if args.query is not None:
            raise ConfigError("give an item (or audio file) or --user, not both")
        sets = args.sets or ["test"]
        hits = recommend_items(layout, args.model, args.user, args.n, sets)
        print(format_hits(hits, f"top {len(hits)} {'/'.join(sets)} items for user {args.user} ({args.model})"))
        return
    if args.query is None:
        raise ConfigError("recommend needs an item id or audio file, or --user USER")
    hits = recommend_users(layout, args.model, args.query, args.n)
    print(format_hits(hits, f"top {len(hits)} users for {args.query} ({args.model})", kind="user"))


def cmd_similar(args):
    from .recommend import format_hits, similar_items
    sets = args.sets or list(SETS)
    hits = similar_items(_layout(args), args.model, args.query, args.k, args.layer, sets)
    space = f"layer {args.layer}" if args.layer is not None else "output"
    print(format_hits(hits, f"{len(hits)} items nearest to {args.query} ({args.model} {space}, cosine)"))


def cmd_architectures(args):
    from .models.catalog import describe_architectures, format_architectures
    print(format_architectures(describe_architectures(args.ids or None), layers=not args.no_layers))


def cmd_spectrograms(args):
    from .audio.runner import compute_spectrograms
    entry = _registry(args).dataset(args.dataset)
    report = compute_spectrograms(_layout(args), entry, n_jobs=args.jobs, overwrite=args.overwrite)
    print(report.summary())


def cmd_patches(args):
    from .audio.patches import create_patches
    entry = _registry(args).dataset(args.dataset)
    paths = create_patches(_layout(args), entry, sets=args.sets or SETS, npatches=args.npatches,
                           window=args.window, mode=args.mode, seed=args.seed)
    print(paths.summary())


def cmd_text(args):
    from . import text
    entry = _registry(args).dataset(args.dataset)
    layout = _layout(args)
    pick = lambda value, default: default if value is None else value  # noqa: E731
    if args.kind == "vsm":
        max_features = pick(args.max_features, entry.max_features) or None
        paths = text.build_vsm(layout, entry.name, max_df=pick(args.max_df, entry.max_df),
                               min_df=pick(args.min_df, entry.min_df), max_features=max_features,
                               sublinear_tf=not args.no_sublinear)
    elif args.kind == "w2v":
        paths = text.build_w2v(layout, entry.name, sequence_length=pick(args.sequence_length, entry.sequence_length),
                               embedding_dim=pick(args.embedding_dim, entry.embedding_dim),
                               epochs=pick(args.epochs, entry.w2v_epochs), seed=pick(args.seed, entry.seed),
                               pretrained=args.pretrained)
    else:
        paths = text.build_d2v_targets(layout, entry.name, dim=pick(args.dim, entry.d2v_dim),
                                       tags=args.tags, seed=pick(args.seed, entry.seed))
    print(paths.summary())


def cmd_interactions(args):
    from .factors import import_interactions

    def column(value):
        return int(value) if value is not None and value.lstrip("-").isdigit() else value

    report = import_interactions(args.file, _layout(args), args.dataset, user_col=column(args.user_col),
                                 item_col=column(args.item_col), count_col=column(args.count_col),
                                 sep=args.sep, min_user=args.min_user, min_item=args.min_item)
    print(report.summary())


def cmd_magna(args):
    from .datasets.magna import import_magna
    report = import_magna(args.annotations, args.mp3_dir, _layout(args), ds=args.dataset, seed=args.seed,
                          fractions=tuple(args.fractions), min_tag_count=args.min_tag_count,
                          top_tags=args.top_tags, min_tags=args.min_tags, decode_check=not args.no_decode_check,
                          n_jobs=args.jobs, overwrite=args.overwrite, progress=True)
    print(report.summary())


def cmd_factors(args):
    from .factors import factorize
    params = dict(parse_param(p) for p in args.param)
    if args.all_items:
        params["targets_all_items"] = True
    report = factorize(_layout(args), args.dataset, method=args.method, dim=args.dim, seed=args.seed, **params)
    print(report.summary())


def parse_param(text):
    """``name=value`` for factorisation parameters, the value read as a literal (never run)."""
    from .config import parse_override
    (name,), value = parse_override(text)
    return name, value


def cmd_pipeline(args):
    from .pipeline import run_dummy_pipeline, run_dummy_recommendation
    chain = run_dummy_recommendation if args.which == "dummy-rec" else run_dummy_pipeline
    chain(_layout(args), _registry(args), n_epochs=args.epochs, verbose=1)


def cmd_dummy_data(args):
    from .datasets.dummy import generate_dummy
    report = generate_dummy(_layout(args).root, seed=args.seed, n_items=args.items, overwrite=args.overwrite)
    print(report.summary())


def cmd_models(args):
    from .store import trained_models
    rows = trained_models(_layout(args))
    if not rows:
        print(f"no trained models in {_layout(args).trained_models()}")
    for row in rows:
        print("\t".join(row.values()))


# ----------------------------------------------------------------------------------- parser
def build_parser():
    common = _common()
    parser = argparse.ArgumentParser(prog="tartarus", parents=[common],
                                     description="Deep-learning experiments on music audio, text and their combination.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name, func, help_):
        p = sub.add_parser(name, parents=[common], help=help_, description=help_)
        p.set_defaults(func=func)
        return p

    add("list", cmd_list, "list the named experiments and datasets")
    p = add("show", cmd_show, "print an experiment or dataset entry, resolved and validated")
    p.add_argument("name")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a value (parsed as a literal, never run as code)")

    p = add("run", cmd_run, "train an experiment, then predict and evaluate it")
    p.add_argument("name", help="experiment name (or '-' with --resume)")
    p.add_argument("suffixes", nargs="*", metavar="META_SUFFIX",
                   help="train_data input suffixes, e.g. model_1-pred_9 (the seed's meta-suffix arguments)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a value, e.g. --set training.n_epochs=3")
    p.add_argument("--resume", metavar="MODEL_ID", help="continue an interrupted model from its last epoch")
    p.add_argument("--no-eval", action="store_true", help="skip prediction and evaluation after training")

    p = add("predict", cmd_predict, "write a model's outputs or a layer's embeddings per item")
    p.add_argument("model", help="model id, e.g. model_1")
    p.add_argument("-p", "--patches", action="store_true",
                   help="predict from the patches files (the seed's flag; the default for audio models)")
    p.add_argument("-l", "--layer", help="layer index (the seed's numbering) or name; embeddings go to train_data/")
    p.add_argument("-s", "--set", dest="sets", action="append", choices=SETS, help="split(s); default test")
    p.add_argument("--aggregation", choices=("mean", "max", "median"),
                   help="how patches combine into one row per item (default: the experiment's, mean)")

    p = add("evaluate", cmd_evaluate, "evaluate a trained model and write results/")
    p.add_argument("model")
    p.add_argument("-s", "--set", dest="sets", action="append", choices=SETS, help="split(s); default test")

    p = add("recommend", cmd_recommend, "top users for a new item or audio file, or top items for a user (--user)")
    p.add_argument("model", help="model id of a recommendation experiment, e.g. model_1")
    p.add_argument("query", nargs="?", metavar="ITEM_OR_AUDIO_FILE", help="an item id or an audio file")
    p.add_argument("-n", type=int, default=10, help="how many results (default 10)")
    p.add_argument("--user", help="rank items for this user instead")
    p.add_argument("-s", "--set", dest="sets", action="append", choices=SETS,
                   help="with --user: the candidate items' split(s); default test (the cold-start items)")

    p = add("similar", cmd_similar, "the items nearest to an item or audio file by cosine")
    p.add_argument("model", help="model id, e.g. model_1")
    p.add_argument("query", metavar="ITEM_OR_AUDIO_FILE")
    p.add_argument("-k", type=int, default=10, help="how many neighbours (default 10)")
    p.add_argument("-l", "--layer", help="compare this layer's embeddings (index or name) instead of the outputs")
    p.add_argument("-s", "--set", dest="sets", action="append", choices=SETS, help="candidate split(s); default all")

    p = add("architectures", cmd_architectures,
            "the model architectures by id: name, input kind, parameters, and the layers -l accepts")
    p.add_argument("ids", nargs="*", metavar="ID", help="only these ids (default: all)")
    p.add_argument("--no-layers", action="store_true", help="one line per architecture")

    p = add("spectrograms", cmd_spectrograms, "decode a dataset's audio into spectrograms (resumable)")
    p.add_argument("dataset")
    p.add_argument("-j", "--jobs", type=int, help="worker processes (default: the dataset entry's num_process)")
    p.add_argument("--overwrite", action="store_true", help="recompute everything, also with changed parameters")

    p = add("patches", cmd_patches, "cut spectrograms into patches per split (HDF5)")
    p.add_argument("dataset")
    p.add_argument("--npatches", type=int, help="patches per item (default: the dataset entry's)")
    p.add_argument("--window", type=float, help="patch length in seconds (default: the dataset entry's)")
    p.add_argument("--mode", choices=("random", "even"), help="random crops or evenly spaced")
    p.add_argument("--seed", type=int, help="seed of the random crops")
    p.add_argument("-s", "--set", dest="sets", action="append", choices=SETS, help="split(s); default all")

    p = add("text", cmd_text, "text features of a dataset: tf-idf (vsm), word2vec sequences (w2v), doc2vec tag targets (d2v)")
    p.add_argument("kind", choices=("vsm", "w2v", "d2v"))
    p.add_argument("dataset")
    p.add_argument("--max-df", type=float, help="vsm: ignore terms in more than this fraction of train texts")
    p.add_argument("--min-df", type=int, help="vsm: ignore terms in fewer train texts than this")
    p.add_argument("--max-features", type=int, help="vsm: keep the most frequent terms only (0: all)")
    p.add_argument("--no-sublinear", action="store_true", help="vsm: raw term counts instead of 1 + log(tf)")
    p.add_argument("--sequence-length", type=int, help="w2v: tokens per item (padded or cut)")
    p.add_argument("--embedding-dim", type=int, help="w2v: word vector size")
    p.add_argument("--pretrained", help="w2v: word2vec file (.bin binary, else text) instead of training on the train texts")
    p.add_argument("--epochs", type=int, help="w2v: training epochs")
    p.add_argument("--dim", type=int, help="d2v: size of the tag vectors (default 40)")
    p.add_argument("--tags", help="d2v: tags file (default index/tags_{ds}.tsv)")
    p.add_argument("--seed", type=int, help="random seed (default: the dataset entry's)")

    p = add("interactions", cmd_interactions, "import (user, item, count) triplets as a sparse user x item matrix")
    p.add_argument("action", choices=("import",))
    p.add_argument("file", help="TSV or CSV (also .gz) of user, item, count rows")
    p.add_argument("--dataset", required=True)
    p.add_argument("--user-col", default="0", help="column of the user id: position (0-based) or header name")
    p.add_argument("--item-col", default="1", help="column of the item id")
    p.add_argument("--count-col", default="2", help="column of the play count")
    p.add_argument("--sep", help="separator (default: tab for .tsv, comma for .csv, else sniffed)")
    p.add_argument("--min-user", type=int, default=1, help="drop users with fewer distinct items")
    p.add_argument("--min-item", type=int, default=1, help="drop items with fewer distinct users")

    p = add("magna", cmd_magna, "import MagnaTagATune (annotations_final.csv + mp3 folder) as a tagging dataset "
                                "with song-level splits")
    p.add_argument("action", choices=("import",))
    p.add_argument("annotations", metavar="ANNOTATIONS_CSV", help="annotations_final.csv (tab-separated)")
    p.add_argument("mp3_dir", metavar="MP3_DIR", help="folder holding the mp3_path values (0/ ... f/)")
    p.add_argument("--dataset", default="MTAT", help="dataset name (default MTAT)")
    p.add_argument("--seed", type=int, default=0, help="seed of the song-level split")
    p.add_argument("--fractions", type=float, nargs=3, default=(0.8, 0.1, 0.1), metavar=("TRAIN", "VAL", "TEST"),
                   help="clip fractions of the splits (default 0.8 0.1 0.1)")
    p.add_argument("--min-tag-count", type=int, default=0, help="drop tags on fewer usable clips than this")
    p.add_argument("--top-tags", type=int, help="keep only the N most frequent tags (e.g. 50)")
    p.add_argument("--min-tags", type=int, default=0,
                   help="drop clips with fewer tags (default 0 keeps untagged clips; text d2v needs 1)")
    p.add_argument("--no-decode-check", action="store_true", help="only check that each mp3 exists and is not empty")
    p.add_argument("-j", "--jobs", type=int, help="threads of the decode check (default: up to 8)")
    p.add_argument("--overwrite", action="store_true", help="import again over an existing import (new splits)")

    p = add("factors", cmd_factors, "item and user latent factors from the train items' interactions (cold start)")
    p.add_argument("dataset")
    p.add_argument("--method", choices=("als", "pmi"), default="als")
    p.add_argument("--dim", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--all-items", action="store_true",
                   help="factorise all items' interactions to give val/test targets too (the seed's protocol)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="method parameter, e.g. regularization=0.1, iterations=15, alpha=1.0, pmi_source='class'")

    p = add("pipeline", cmd_pipeline, "the seed's dummy chains: audio, text and fused models, and a table comparing "
                                      "them (dummy: genre classification; dummy-rec: cold-start recommendation)")
    p.add_argument("which", choices=("dummy", "dummy-rec"))
    p.add_argument("--epochs", type=int, help="override training.n_epochs of every experiment (quick runs)")

    p = add("dummy-data", cmd_dummy_data, "generate the embedded dummy dataset (DUMMY) under the data root")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--items", type=int, default=60)
    p.add_argument("--overwrite", action="store_true")

    add("models", cmd_models, "list the trained models (models/trained_models.tsv)")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except TartarusError as exc:
        print(f"tartarus: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into head and the like
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("tartarus: interrupted (finished outputs are kept; rerun to resume)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
