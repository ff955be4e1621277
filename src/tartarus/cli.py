"""The ``tartarus`` command line: a thin layer that parses arguments and calls library functions.

The root scripts (``run_experiments.py``, ``predict.py``) and ``audio_processing/*.py`` call ``main``
with their subcommand, so the seed's commands work as written.
"""

from __future__ import annotations

import argparse
import json
import sys

# nothing here imports Keras or TensorFlow: main() quiets their start-up first (tartarus.quiet)
from .errors import ConfigError, TartarusError  # noqa: E402
from .config.schema import (AGGREGATIONS, FACTOR_DEVICES, PATCH_MODES, PROTOCOL_CHOICES, DatasetEntry,  # noqa: E402
                            PredictingSection, PROJECTIONS, SCORE_DEVICES, TrainingSection, range_of, ranged)
from .layout import SETS, DataLayout  # noqa: E402
from .quiet import configure_cli, verbose_requested  # noqa: E402
from .scheduler import SCHEDULER_ENV, scheduler_address  # noqa: E402  (no dask import until used)


def _common():
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--data-dir", default=None,
                   help="data root (default: $TARTARUS_DATA or ./data)")
    p.add_argument("--experiments", default=None,
                   help="folder of experiment TOML files (default: $TARTARUS_EXPERIMENTS or ./experiments)")
    # SUPPRESS: a subcommand's default must not undo `tartarus --verbose COMMAND`
    p.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                   help="show the backend's start-up log (hardware probing) too (also: $TARTARUS_VERBOSE=1)")
    return p


def _number(kind, allowed):
    """An argparse ``type``: a ``kind`` (int or float) within Range ``allowed``, else one usage error
    naming the option, the range and the value (``argument --dim: 0 is out of range; allowed: [1, inf)``).
    ``allowed`` is the range of the config key the option stands for, where there is one."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        if value not in allowed:
            raise argparse.ArgumentTypeError(f"{value!r} is out of range; allowed: {allowed}")
        return value
    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


COUNT = ranged(ge=1)  # -n, -k, --dim ...: how many
SEED = ranged(ge=0)  # numpy and the factorisations take non-negative seeds only
ANY_NUMBER = ranged()  # finite


def _entry(key, kind=int):
    """The argparse type of an option standing for DatasetEntry ``key`` (same range)."""
    return _number(kind, range_of(DatasetEntry, key))


def _registry(args, skip_unreadable=False):
    """The package's entries, with the data root's own ``datasets.toml`` over them."""
    from .config import Registry
    return Registry(args.experiments, data_root=_layout(args).root, skip_unreadable=skip_unreadable)


def _layout(args):
    return DataLayout(args.data_dir)


def _add_scheduler(p, what):
    """``--scheduler ADDRESS`` of a command that can run on a Dask cluster (``what`` it does there)."""
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help=f"run on the Dask cluster of this scheduler (tcp://host:8786, as `dask scheduler` "
                        f"prints it; default: ${SCHEDULER_ENV}, else locally): {what}; every worker must "
                        f"see the data root at the same path")


def _add_pretrained(p, model=True):
    """The options of the commands that run a pretrained tagger (tag, embed)."""
    if model:
        p.add_argument("--model", default="MTT_musicnn",
                       help="MTT_musicnn (default), MSD_musicnn, MTT_vgg or MSD_vgg")
    p.add_argument("-j", "--jobs", dest="n_jobs", type=_entry("num_process"), default=1, metavar="N",
                   help="processes decoding the audio beside the one running the model (default 1: the same "
                        "process; -1: every core)")
    p.add_argument("--batch-size", type=_number(int, COUNT), default=64, metavar="B",
                   help="3 s patches per inference batch, across files (default 64)")
    p.add_argument("--cache-dir", metavar="DIR", help="where the converted weights are kept (default: "
                   "$TARTARUS_CACHE, else ~/.cache/tartarus)")


# ------------------------------------------------------------------------------- commands
def cmd_list(args):
    reg = _registry(args, skip_unreadable=True)  # list what can be read; name each file that cannot
    for exc in reg.unreadable:
        print(f"tartarus: warning: skipped {exc}", file=sys.stderr)
    print("experiments:")
    for name in reg.experiment_names():
        print(f"  {name:<24} {reg.description(name)}")
    print("datasets:")
    for name in reg.dataset_names():
        print(f"  {name:<24} {reg.description(name)}")


def cmd_show(args):
    reg = _registry(args)
    note, protocol = "", None
    if args.name in reg.dataset_names():
        entry = reg.dataset(args.name).to_dict()
    else:
        try:
            experiment = reg.experiment(args.name, args.set)
            entry = experiment.to_dict()
            from .protocol import protocol_summary
            protocol = protocol_summary(experiment)
        except ConfigError as exc:
            if "missing value" not in str(exc) or args.set:
                raise
            # an abstract base: show what it sets, and what an entry built on it must add
            entry, note = reg.raw_experiment(args.name), f"# not runnable as it is: {exc}"
    print(f"# {args.name}  (from {reg.source(args.name)})")
    if note:
        print(note)
    print(json.dumps(entry, indent=2))
    if protocol:  # the training keys resolved: what `tartarus run` will do
        print("# training protocol")
        for key, value in protocol.items():
            print(f"#   {key}: {value}")


def cmd_run(args):
    from .pipeline import run_experiment
    layout = _layout(args)
    from .distribution import devices_overrides
    overrides = list(args.set) + devices_overrides(args.devices)
    if args.tensorboard:
        overrides.append("training.tensorboard=true")
    experiment = None if args.resume else _registry(args).experiment(args.name, overrides)
    if args.resume and args.name and args.name != "-":
        print(f"resuming {args.resume} (its saved config is used; {args.name!r} is ignored)")
    result = run_experiment(experiment, tuple(args.suffixes), layout, resume=args.resume, evaluate=not args.no_eval,
                            overrides=overrides if args.resume else (), report=not args.no_report)
    if not result.nothing_to_do:
        print(f"{result.model_id}: done after {result.epochs} epoch(s); model in {layout.model_dir(result.model_id)}")


def cmd_predict(args):
    from .predict import predict
    layout = _layout(args)
    sets = args.sets or ["test"]
    for set_, out, index, result in predict(layout, args.model, sets, args.layer, args.aggregation,
                                            full_track=args.full_track, dataset=args.pred_dataset,
                                            trim_coeff=args.trim_coeff, middle=args.middle, patches=args.patches):
        print(f"{args.model} {set_}: {result.values.shape[0]} items x {result.values.shape[1]} -> {out} (+ {index.name})")
        if result.patch_counts:
            print(f"  {sum(result.patch_counts)} patches of whole tracks ({min(result.patch_counts)} to "
                  f"{max(result.patch_counts)} per item)")
        if result.missing_items:
            print(f"  {len(result.missing_items)} item(s) without {'a long enough spectrogram' if args.full_track else 'patches'}"
                  f" left out: " + ", ".join(result.missing_items[:10]))


def cmd_evaluate(args):
    from .pipeline import evaluate_trained
    evaluate_trained(_layout(args), args.model, args.sets or ["test"], verbose=1, protocol=args.protocol,
                     device=args.device, scheduler=scheduler_address(args.scheduler), auc=args.auc)


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
    metric, against = ("euclidean" if args.euclidean else "cosine"), ("targets" if args.targets else "predictions")
    hits = similar_items(_layout(args), args.model, args.query, args.k, args.layer, sets, metric, against)
    space = f"layer {args.layer}" if args.layer is not None else "output"
    space += " vs. the items' targets" if args.targets else ""
    print(format_hits(hits, f"{len(hits)} items nearest to {args.query} ({args.model} {space}, {metric})"))


def cmd_playlist(args):
    from .playlist import audio_paths, make_playlist, playlist_paths, write_playlist
    from .recommend import format_hits
    layout = _layout(args)
    sets = args.sets or list(SETS)
    playlist = make_playlist(layout, args.model, args.seeds, args.n, args.whitelist, args.threshold, sets,
                             args.layer, args.score, "each" if args.each else "mean")
    entry = _registry(args).dataset(playlist.dataset, undeclared="defaults")  # its audio folder and index
    audio = audio_paths(layout, entry)
    tsv, m3us = playlist_paths(layout, playlist, args.out)
    for label, hits in playlist.lists:
        print(format_hits(hits, f"playlist of {len(hits)} items for {label} ({args.model}, score {args.score})"))
    if playlist.whitelist_unknown:
        print(f"{len(playlist.whitelist_unknown)} whitelist item(s) are not among the candidates: "
              + ", ".join(playlist.whitelist_unknown[:10]))
    write_playlist(playlist, tsv, m3us, audio)
    no_audio = sum(h.id not in audio for h in playlist.hits)
    print(f"written: {tsv}, {', '.join(map(str, m3us))}"
          + (f" ({no_audio} item(s) without an audio file in the M3U)" if no_audio else ""))


def cmd_architectures(args):
    from .models.catalog import describe_architectures, format_architectures
    print(format_architectures(describe_architectures(args.ids or None), layers=not args.no_layers))


def cmd_spectrograms(args):
    from .audio.runner import compute_spectrograms
    from .datasets.derived import share_items
    entry = _registry(args).dataset(args.dataset)
    shared = share_items(_layout(args), entry)  # an entry with items_from: the source's index and splits first
    if shared and shared.copied:
        print(shared.summary())
    report = compute_spectrograms(_layout(args), entry, n_jobs=args.n_jobs, overwrite=args.overwrite,
                                  scheduler=scheduler_address(args.scheduler))
    print(report.summary())


def cmd_patches(args):
    from .audio.patches import create_patches
    from .datasets.derived import share_items
    entry = _registry(args).dataset(args.dataset)
    shared = share_items(_layout(args), entry)  # refreshed: targets made for the source since the spectrograms
    if shared and shared.copied:
        print(shared.summary())
    paths = create_patches(_layout(args), entry, sets=args.sets or SETS, npatches=args.npatches,
                           window=args.window, mode=args.mode, seed=args.seed,
                           scheduler=scheduler_address(args.scheduler))
    print(paths.summary())


def cmd_text(args):
    from . import text
    entry = _registry(args).dataset(args.dataset, undeclared="defaults")  # text reads no audio setting
    layout = _layout(args)
    pick = lambda value, default: default if value is None else value  # noqa: E731
    if args.kind == "vsm":
        max_features = pick(args.max_features, entry.max_features) or None
        paths = text.build_vsm(layout, entry.name, max_df=pick(args.max_df, entry.max_df),
                               min_df=pick(args.min_df, entry.min_df), max_features=max_features,
                               sublinear_tf=not args.no_sublinear, n_words=pick(args.n_words, entry.n_words))
    elif args.kind == "w2v":
        paths = text.build_w2v(layout, entry.name, sequence_length=pick(args.sequence_length, entry.sequence_length),
                               embedding_dim=pick(args.embedding_dim, entry.embedding_dim),
                               n_epochs=pick(args.epochs, entry.w2v_epochs), seed=pick(args.seed, entry.seed),
                               pretrained=args.pretrained, skipgram=args.skipgram or entry.w2v_skipgram,
                               sentences=args.sentences, unit_vectors=not args.raw_vectors)
    else:
        paths = text.build_d2v_targets(layout, entry.name, dim=pick(args.dim, entry.d2v_dim),
                                       tags=args.tags, seed=pick(args.seed, entry.seed), variant=args.variant)
    print(paths.summary())


def cmd_cluster(args):
    from .cluster import cluster_items, format_clusters, write_assignments
    source = "features" if args.suffix else "targets"
    sets = args.sets or list(SETS)
    clusters, ids, assignment = cluster_items(_layout(args), args.dataset, k=args.k, source=source, fact=args.fact,
                                              dim=args.dim, suffix=args.suffix, sets=sets, seed=args.seed,
                                              top=args.top)
    what = f"X_*_{args.suffix}" if args.suffix else f"y_*_{args.fact}_{args.dim}"
    print(format_clusters(clusters, f"{len(clusters)} k-means clusters of {len(ids)} {args.dataset} items "
                                    f"({what}, {'/'.join(sets)})", members=args.members))
    if args.output:
        print(f"cluster of each item -> {write_assignments(args.output, ids, assignment)}")


def cmd_interactions(args):
    from .interactions import import_interactions
    if args.action == "split":
        return _split_interactions(args)
    if args.file is None:
        raise ConfigError("interactions import needs the triplets FILE (TSV or CSV of user, item, count rows)")

    def column(value):
        return int(value) if value is not None and value.lstrip("-").isdigit() else value

    report = import_interactions(args.file, _layout(args), args.dataset, user_col=column(args.user_col),
                                 item_col=column(args.item_col), count_col=column(args.count_col),
                                 sep=args.sep, min_user=args.min_user, min_item=args.min_item,
                                 overwrite=args.overwrite, max_bad_rows=args.max_bad_rows)
    print(report.summary())


def cmd_magna(args):
    from .datasets.magna import import_magna
    report = import_magna(args.annotations, args.mp3_dir, _layout(args), ds=args.dataset, seed=args.seed,
                          fractions=tuple(args.fractions), min_tag_count=args.min_tag_count,
                          top_tags=args.top_tags, min_tags=args.min_tags, decode_check=not args.no_decode_check,
                          n_jobs=args.n_jobs, overwrite=args.overwrite, progress=True)
    print(report.summary())


def _split_interactions(args):
    """``tartarus interactions split``: a seeded random item split of the imported items."""
    from .interactions import load_interactions
    from .splits import random_item_splits, write_item_splits
    if args.file is not None:
        raise ConfigError(f"interactions split takes no FILE (got {args.file!r}): it splits the imported items")
    layout = _layout(args)
    _, _, items = load_interactions(layout, args.dataset)
    ids = random_item_splits(items, tuple(args.fractions), args.seed)
    files = write_item_splits(layout, args.dataset, ids, overwrite=args.overwrite)
    sizes = ", ".join(f"{set_} {len(ids[set_])}" for set_ in SETS)
    print(f"{args.dataset}: {len(items)} items split at random (seed {args.seed}): {sizes} -> "
          f"{', '.join(str(path) for path in files.values())}")


def cmd_factors(args):
    from .factors import factor_params
    from .pipeline import make_factors
    given = dict(parse_param(p) for p in args.param)
    fact = given.pop("fact", None)  # the name in the files, not a method parameter
    all_items = bool(given.pop("targets_all_items", False)) or args.all_items
    if args.device is not None:
        if "device" in given and given["device"] != args.device:
            raise ConfigError(f"--device {args.device} and --param device={given['device']!r}: give the device once")
        if args.method == "als":
            given["device"] = args.device
        elif args.device == "gpu":  # PMI's SVD is scikit-learn's, on the CPU; auto and cpu mean that
            raise ConfigError("--device gpu: only --method als runs on the GPU (implicit's CUDA ALS); "
                              "PMI + SVD runs on the CPU: use --device cpu or auto, or --method als")
    params = factor_params(args.method, **given)
    report = make_factors(_layout(args), args.dataset, params, dim=args.dim, seed=args.seed,
                          targets_all_items=all_items, fact=fact)
    print(report.summary())


def parse_param(text):
    """``name=value`` for factorisation parameters, the value read as a literal (never run)."""
    from .config import parse_override
    (name,), value = parse_override(text)
    return name, value


def cmd_pipeline(args):
    from .pipeline import run_dummy_pipeline, run_dummy_recommendation
    chain = run_dummy_recommendation if args.which == "dummy-rec" else run_dummy_pipeline
    chain(_layout(args), _registry(args), n_epochs=args.epochs, verbose=1, devices=args.devices)


def cmd_dummy_data(args):
    from .datasets.dummy import generate_dummy
    report = generate_dummy(_layout(args).root, seed=args.seed, n_items=args.items, overwrite=args.overwrite)
    print(report.summary())


def cmd_tag(args):
    from .errors import AudioError
    from .tagging import tag_files
    report = tag_files(args.inputs, args.model, args.n, args.out, n_jobs=args.n_jobs, batch_size=args.batch_size,
                       cache_dir=args.cache_dir)
    if args.out is not None and report.written:
        print(f"{len(report.written)} taggram(s) (patches x 50) and tags.txt -> {args.out}")
    for path, reason in report.failed:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    if report.failed and not report.tags:  # some files tagged: a success that lists what it skipped
        raise AudioError(f"none of the {len(report.failed)} file(s) could be tagged (reasons above)")


def cmd_embed(args):
    from .tagging import embed_dataset
    entry = _registry(args).dataset(args.dataset, undeclared="defaults")  # its audio folder and index
    report = embed_dataset(_layout(args), entry, args.model, args.layer, args.sets or SETS, n_jobs=args.n_jobs,
                           batch_size=args.batch_size, cache_dir=args.cache_dir, overwrite=args.overwrite)
    print(report.summary())


def cmd_export(args):
    from .export import FORMAT_TITLES, export
    result = export(args.model, args.format, out=args.out, layout=_layout(args), layer=args.layer,
                    overwrite=args.overwrite, cache_dir=args.cache_dir)
    print(f"{result.source}: {FORMAT_TITLES[result.fmt]} -> {result.path} (exported on the {result.backend} backend)")
    for kind, tensors in (("input", result.inputs), ("output", result.outputs)):
        for tensor in tensors:
            print(f"  {kind:<6} {tensor}")
    if result.max_abs_diff is None:
        print(f"  {result.check_note}")
    else:
        print(f"  {result.check_note}: largest |export - keras| = {result.max_abs_diff:.3g}")


def cmd_report(args):
    from .report import write_comparison, write_report
    layout = _layout(args)
    if args.compare:
        if len(args.models) < 2:
            raise ConfigError(f"report --compare needs two or more models, got {len(args.models)}: "
                              f"{' '.join(args.models)}")
        print(f"comparison of {', '.join(args.models)} -> {write_comparison(layout, args.models, out=args.out)}")
        return
    if args.out and len(args.models) > 1:
        raise ConfigError("report --out names one page: give one model, or --compare for one page of several")
    for model_id in args.models:
        path = write_report(layout, model_id, out=args.out, layer=args.layer, projection=args.projection,
                            embedding=not args.no_embedding)
        print(f"{model_id}: report -> {path}")


def cmd_results(args):
    from .report.runs import format_runs, gather_runs
    layout = _layout(args)
    rows = gather_runs(layout, experiment=args.experiment, dataset=args.dataset)
    if not rows:
        which = "".join(f" {flag} {value}" for flag, value in (("--experiment", args.experiment),
                                                              ("--dataset", args.dataset)) if value is not None)
        print(f"no evaluated model{' matching' + which if which else ''} under {layout.results_dir}; "
              f"{layout.cli('run', 'EXPERIMENT')} trains and evaluates one", file=sys.stderr)
        return
    print(format_runs(rows, metrics=args.metrics, fmt=args.format))


def cmd_models(args):
    from .store import clean_models, trained_models, unfinished_models
    layout = _layout(args)
    if args.clean:
        removed = clean_models(layout)
        for folder in removed:
            print(f"removed {folder} (stopped before its first epoch: no checkpoint, no model.keras)")
        if not removed:
            print(f"nothing to clean in {layout.models_dir}")
        return
    rows = trained_models(layout)
    if not rows:
        print(f"no trained models in {layout.trained_models()}")
    for row in rows:
        print("\t".join(row.values()))
    for info in unfinished_models(layout):  # folders trained_models.tsv does not list
        print("\t".join(x for x in (info["model_id"], info["status"], info["hint"]) if x))


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
    p.add_argument("--resume", metavar="MODEL_ID", help="continue an interrupted model from its last epoch "
                   "(with --set, only training.n_epochs, training.patience and training.early_stopping may change, "
                   "and --devices, --tensorboard)")
    p.add_argument("--no-eval", action="store_true", help="skip prediction and evaluation after training")
    p.add_argument("--no-report", action="store_true", help="skip the report page after evaluating "
                   "(models/MODEL/report.html; tartarus report MODEL makes it later)")
    p.add_argument("--devices", type=_number(int, range_of(TrainingSection, "devices")), metavar="N",
                   help="train data-parallel on N devices of the backend (JAX or TensorFlow; 0 = all of them): "
                        "sets training.distribution = data_parallel and training.devices = N; the global batch "
                        "training.n_minibatch is split evenly over them")
    p.add_argument("--tensorboard", action="store_true", help="write TensorBoard logs under "
                   "models/MODEL/tensorboard (sets training.tensorboard = true); open them with "
                   "tensorboard --logdir DATA/models/MODEL/tensorboard")

    p = add("predict", cmd_predict, "write a model's outputs or a layer's embeddings per item")
    p.add_argument("model", help="model id, e.g. model_1")
    p.add_argument("-p", "--patches", action="store_true",
                   help="predict from the patches files (the seed's flag): what an audio model does without "
                        "--full-track anyway; an error for a model that reads no patches")
    p.add_argument("-l", "--layer", help="layer index (the seed's numbering) or name; embeddings go to train_data/")
    p.add_argument("-s", "--set", dest="sets", action="append", choices=SETS, help="split(s); default test")
    p.add_argument("--aggregation", choices=AGGREGATIONS,
                   help="how patches combine into one row per item (default: the experiment's, mean)")
    p.add_argument("--full-track", action="store_true",
                   help="predict from each item's whole spectrogram as the seed's predict.py: trim "
                        "predicting.trim_coeff of each end, patches with 50%% overlap, their mean")
    p.add_argument("--trim-coeff", type=_number(float, range_of(PredictingSection, "trim_coeff")), metavar="C",
                   help="with --full-track: share trimmed from each end (default: predicting.trim_coeff, 0.15)")
    p.add_argument("-rnd", "--middle", action="store_true",
                   help="with --full-track: only the middle patch of the trimmed track (the seed's -rnd)")
    p.add_argument("-pd", "--pred-dataset", metavar="DATASET",
                   help="predict the items of another dataset (its splits, patches or spectrograms) with this model")

    p = add("report", cmd_report, "write a model's report page (models/MODEL/report.html), or compare models")
    p.add_argument("models", nargs="+", metavar="MODEL", help="model id(s), e.g. model_1")
    p.add_argument("--compare", action="store_true",
                   help="one page of the models side by side (results/compare_MODEL_..._MODEL.html)")
    p.add_argument("-l", "--layer", help="the embedding map's layer, index (the seed's numbering) or name "
                   "(default: the layer before the output)")
    p.add_argument("--projection", choices=PROJECTIONS, default="tsne",
                   help="how the embedding map is projected to 2-D: t-SNE (default), PCA or UMAP")
    p.add_argument("--no-embedding", action="store_true", help="leave the embedding map out (it runs the model "
                   "on the test split)")
    p.add_argument("--out", metavar="FILE.html", help="write the page here instead")

    p = add("results", cmd_results, "one table of every evaluated model: inputs, dataset, split, metrics, epochs, "
                                    "training time (reads results/, writes nothing)")
    p.add_argument("--experiment", metavar="GLOB", help="only experiments whose name matches, e.g. 'dummy_*'")
    p.add_argument("--dataset", metavar="DS", help="only models of this dataset")
    p.add_argument("--metric", dest="metrics", action="extend", nargs="+", metavar="M",
                   help="metric columns, e.g. --metric roc_auc pr_auc precision@5 (default: accuracy, macro_f1, "
                        "roc_auc, pr_auc, map_at_k, precision@C and ndcg@C, those the results have)")
    p.add_argument("--format", choices=("table", "md", "csv", "latex"), default="table",
                   help="aligned text (default), GitHub markdown, CSV, or a LaTeX tabular (booktabs, 3 decimals)")

    p = add("evaluate", cmd_evaluate, "evaluate a trained model and write results/")
    p.add_argument("model")
    p.add_argument("-s", "--set", dest="sets", action="append", choices=SETS, help="split(s); default test")
    p.add_argument("--protocol", choices=PROTOCOL_CHOICES,
                   help="recommendation: count only users with a held-out item (tartarus), every user with "
                        "0 for those without one (seed, as the published numbers), or both; "
                        "default: the experiment's evaluating.protocol")
    p.add_argument("--device", choices=SCORE_DEVICES, default="auto",
                   help="recommendation: rank users' scores with keras.ops on the backend's device "
                        "(accelerator) or with numpy (cpu); the metrics are the same; default auto "
                        "(the accelerator when Keras sees a GPU or TPU)")
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help=f"recommendation: compute the metrics on the Dask cluster of this scheduler "
                        f"(tcp://host:8786, as `dask scheduler` prints it; default: ${SCHEDULER_ENV}, else "
                        f"locally), by blocks of users, with the same numbers; the factors and held-out "
                        f"rows are sent to the workers (they need no data root)")
    p.add_argument("--no-auc", dest="auc", action="store_false", default=None,
                   help="recommendation: leave out ROC-AUC and PR-AUC, which rank every item of every user "
                        "in float64 (about 20x the time of MAP@k on a CPU); default: the experiment's "
                        "evaluating.ranking_auc (true)")

    p = add("recommend", cmd_recommend, "top users for a new item or audio file, or top items for a user (--user)")
    p.add_argument("model", help="model id of a recommendation experiment, e.g. model_1")
    p.add_argument("query", nargs="?", metavar="ITEM_OR_AUDIO_FILE", help="an item id or an audio file")
    p.add_argument("-n", type=_number(int, COUNT), default=10, help="how many results (default 10)")
    p.add_argument("--user", help="rank items for this user instead")
    p.add_argument("-s", "--set", dest="sets", action="append", choices=SETS,
                   help="with --user: the candidate items' split(s); default test (the cold-start items)")

    p = add("similar", cmd_similar, "the items nearest to an item or audio file by cosine (or Euclidean distance)")
    p.add_argument("model", help="model id, e.g. model_1")
    p.add_argument("query", metavar="ITEM_OR_AUDIO_FILE")
    p.add_argument("-k", type=_number(int, COUNT), default=10, help="how many neighbours (default 10)")
    p.add_argument("-l", "--layer", help="compare this layer's embeddings (index or name) instead of the outputs")
    p.add_argument("-s", "--set", dest="sets", action="append", choices=SETS, help="candidate split(s); default all")
    p.add_argument("--euclidean", action="store_true", help="rank by Euclidean distance (smallest first) instead of cosine")
    p.add_argument("--targets", action="store_true", help="compare the query's prediction with the items' ground-truth "
                   "vectors (e.g. doc2vec tag vectors), its own included; with --euclidean: shufl's user mode")

    p = add("playlist", cmd_playlist, "rank the catalogue by closeness to seed items (or audio files); "
                                      "writes results/playlist_{model}_{seed}.tsv and .m3u")
    p.add_argument("model", help="model id, e.g. model_1")
    p.add_argument("seeds", nargs="+", metavar="SEED_ITEM", help="item ids of the model's dataset, or audio files")
    p.add_argument("-n", type=_number(int, COUNT), default=300, help="the most items a list holds (default 300)")
    p.add_argument("--whitelist", metavar="FILE", help="only these items (one id a line, or the first TSV column)")
    p.add_argument("--threshold", type=_number(float, ANY_NUMBER), help="keep only items scoring strictly above this")
    p.add_argument("-s", "--set", dest="sets", action="append", choices=SETS, help="candidate split(s); default all")
    p.add_argument("-l", "--layer", help="compare this layer's embeddings (index or name) instead of the outputs")
    p.add_argument("--score", choices=("dot", "cosine"), default="dot",
                   help="dot: seed . item / |item| (the original recommend.py's, default); cosine")
    p.add_argument("--each", action="store_true",
                   help="one list per seed (as the original script) instead of one by the seeds' mean score")
    p.add_argument("--out", metavar="PATH", help="write PATH.tsv and PATH.m3u instead of results/playlist_*")

    p = add("architectures", cmd_architectures,
            "the model architectures by id: name, input kind, parameters, and the layers -l accepts")
    p.add_argument("ids", nargs="*", metavar="ID", help="only these ids (default: all)")
    p.add_argument("--no-layers", action="store_true", help="one line per architecture")

    p = add("tag", cmd_tag, "the top tags of audio files from a pretrained tagger (musicnn's or its VGG "
                            "baseline's), as musicnn's CLI prints them; --out also writes each taggram")
    p.add_argument("inputs", nargs="+", metavar="FILE_OR_FOLDER",
                   help="audio files, or folders (walked, subfolders too, for audio files, in sorted order)")
    _add_pretrained(p)
    p.add_argument("-n", type=_number(int, ranged(ge=1, le=50)), default=5,
                   help="how many tags per file, the highest mean over the file's 3 s patches first (default 5)")
    p.add_argument("--out", metavar="DIR", help="write DIR/<file stem>.npy (taggram: patches x 50, float32) per "
                   "file and DIR/tags.txt (the 50 labels in column order); two files with one stem are refused")

    p = add("embed", cmd_embed, "per-item embeddings of a dataset's splits from a pretrained tagger: "
                                "train_data/X_{set}_{MODEL}-{layer}_{ds}.npy, inputs of vector experiments")
    p.add_argument("model", metavar="MODEL", help="MTT_musicnn, MSD_musicnn, MTT_vgg or MSD_vgg")
    p.add_argument("dataset")
    p.add_argument("--layer", help="layer whose output (mean over the item's 3 s patches, and over time and "
                   "frequency for the convolutional layers) is the embedding (default: penultimate for "
                   "musicnn, pool5 for VGG; tartarus architectures lists the layers)")
    p.add_argument("-s", "--set", dest="sets", action="append", choices=SETS, help="split(s); default all")
    p.add_argument("--overwrite", action="store_true", help="recompute sets whose files are already complete")
    _add_pretrained(p, model=False)

    p = add("spectrograms", cmd_spectrograms, "decode a dataset's audio into spectrograms (resumable)")
    p.add_argument("dataset")
    p.add_argument("-j", "--jobs", dest="n_jobs", type=_entry("num_process"),
                   help="worker processes (default: the dataset entry's num_process; -1: every core)")
    p.add_argument("--overwrite", action="store_true", help="recompute everything, also with changed parameters")
    _add_scheduler(p, "the chunks of files run on its workers (-j is then unused)")

    p = add("patches", cmd_patches, "cut spectrograms into patches per split (HDF5)")
    p.add_argument("dataset")
    p.add_argument("--npatches", type=_entry("npatches"), help="patches per item (default: the dataset entry's)")
    p.add_argument("--window", type=_entry("window", float),
                   help="patch length in seconds (default: the dataset entry's)")
    p.add_argument("--mode", choices=PATCH_MODES, help="random crops or evenly spaced")
    p.add_argument("--seed", type=_entry("seed"), help="seed of the random crops")
    p.add_argument("-s", "--set", dest="sets", action="append", choices=SETS, help="split(s); default all")
    _add_scheduler(p, "workers write shards, and the usual file becomes an HDF5 virtual dataset over them")

    p = add("text", cmd_text, "text features of a dataset: tf-idf (vsm), word2vec sequences (w2v), doc2vec tag targets (d2v)")
    p.add_argument("kind", choices=("vsm", "w2v", "d2v"))
    p.add_argument("dataset")
    p.add_argument("--max-df", type=_entry("max_df", float),
                   help="vsm: ignore terms in more than this fraction of train texts")
    p.add_argument("--min-df", type=_entry("min_df"), help="vsm: ignore terms in fewer train texts than this")
    p.add_argument("--max-features", type=_entry("max_features"),
                   help="vsm: keep the most frequent terms only (0: all; default 10000)")
    p.add_argument("--no-sublinear", action="store_true", help="vsm: raw term counts instead of 1 + log(tf)")
    p.add_argument("--n-words", type=_entry("n_words"),
                   help="vsm: only the first N words of each text count (0: all; default 300)")
    p.add_argument("--sequence-length", type=_entry("sequence_length"), help="w2v: tokens per item (padded or cut)")
    p.add_argument("--embedding-dim", type=_entry("embedding_dim"), help="w2v: word vector size")
    p.add_argument("--pretrained", help="w2v: word2vec file (.bin binary, else text; gensim's pickled .kv is refused) "
                        "instead of training on the train texts")
    p.add_argument("--epochs", type=_entry("w2v_epochs"), help="w2v: training epochs (default 5, gensim's)")
    p.add_argument("--skipgram", action="store_true", help="w2v: skip-gram instead of CBOW")
    p.add_argument("--sentences", choices=("lines", "texts"), default="lines",
                   help="w2v: train on each line of a text (default) or on whole texts")
    p.add_argument("--raw-vectors", action="store_true", help="w2v: keep trained word vectors as they are, "
                   "not scaled to unit length")
    p.add_argument("--dim", type=_entry("d2v_dim"), help="d2v: size of the tag vectors (default 40)")
    p.add_argument("--tags", help="d2v: tags file (default index/tags_{ds}.tsv)")
    p.add_argument("--variant", choices=("dbow", "shufl"), default="dbow",
                   help="d2v: PV-DBOW, centred, unit-length vectors (default), or shufl's PV-DM vectors shifted to >= 0")
    p.add_argument("--seed", type=_entry("seed"), help="random seed (default: the dataset entry's)")

    p = add("cluster", cmd_cluster, "k-means clusters of item vectors (doc2vec tag targets, or any X_*.npy "
                                    "embedding), with the commonest tags and labels of each (shufl's clustering.py)")
    p.add_argument("dataset")
    p.add_argument("-k", type=_number(int, COUNT), default=40, help="number of clusters (default 40, as shufl)")
    p.add_argument("--fact", default="d2v", help="targets y_{set}_{fact}_{dim}_{ds}.npy (default d2v)")
    p.add_argument("--dim", type=_number(int, COUNT), default=40, help="their dimension (default 40)")
    p.add_argument("--suffix", help="cluster train_data/X_{set}_{suffix}_{ds}.npy instead (e.g. model_3-pred_pooled)")
    p.add_argument("-s", "--set", dest="sets", action="append", choices=SETS, help="split(s); default all")
    p.add_argument("--seed", type=_number(int, SEED), default=0, help="seed of the k-means starts")
    p.add_argument("--top", type=_number(int, ranged(ge=0)), default=5,
                   help="tags and labels shown per cluster (default 5)")
    p.add_argument("--members", type=_number(int, ranged(ge=0)), default=5,
                   help="item ids shown per cluster (default 5; 0: none)")
    p.add_argument("-o", "--output", help="also write id<TAB>cluster of every item to this TSV file")

    p = add("interactions", cmd_interactions, "import (user, item, count) triplets as a sparse user x item matrix; "
                                              "split: a random train/val/test split of the imported items")
    p.add_argument("action", choices=("import", "split"))
    p.add_argument("file", nargs="?", help="import: TSV or CSV (also .gz) of user, item, count rows")
    p.add_argument("--dataset", required=True)
    p.add_argument("--user-col", default="0", help="column of the user id: position (0-based) or header name")
    p.add_argument("--item-col", default="1", help="column of the item id")
    p.add_argument("--count-col", default="2", help="column of the play count")
    p.add_argument("--sep", help="separator (default: tab for .tsv, comma for .csv, else sniffed)")
    p.add_argument("--min-user", type=_number(int, COUNT), default=1, help="drop users with fewer distinct items")
    p.add_argument("--min-item", type=_number(int, COUNT), default=1, help="drop items with fewer distinct users")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing import (the factors made from it become stale), or with split "
                        "the existing item splits")
    p.add_argument("--fractions", type=_number(float, ranged(ge=0, le=1)), nargs=3, default=(0.8, 0.1, 0.1),
                   metavar=("TRAIN", "VAL", "TEST"), help="split: item fractions (default 0.8 0.1 0.1)")
    p.add_argument("--seed", type=_number(int, SEED), default=0, help="split: seed of the random split")
    p.add_argument("--max-bad-rows", type=_number(float, ranged(ge=0, le=1)), default=0.01, metavar="FRACTION",
                   help="refuse the file when more than this fraction of its rows is bad (default 0.01)")

    p = add("magna", cmd_magna, "import MagnaTagATune (annotations_final.csv + mp3 folder) as a tagging dataset "
                                "with song-level splits")
    p.add_argument("action", choices=("import",))
    p.add_argument("annotations", metavar="ANNOTATIONS_CSV", help="annotations_final.csv (tab-separated)")
    p.add_argument("mp3_dir", metavar="MP3_DIR", help="folder holding the mp3_path values (0/ ... f/)")
    p.add_argument("--dataset", default="MTAT", help="dataset name (default MTAT)")
    p.add_argument("--seed", type=_number(int, SEED), default=0, help="seed of the song-level split")
    p.add_argument("--fractions", type=_number(float, ranged(ge=0, le=1)), nargs=3, default=(0.8, 0.1, 0.1),
                   metavar=("TRAIN", "VAL", "TEST"),
                   help="clip fractions of the splits (default 0.8 0.1 0.1)")
    p.add_argument("--min-tag-count", type=_number(int, ranged(ge=0)), default=0,
                   help="drop tags on fewer usable clips than this")
    p.add_argument("--top-tags", type=_number(int, COUNT), help="keep only the N most frequent tags (e.g. 50)")
    p.add_argument("--min-tags", type=_number(int, ranged(ge=0)), default=0,
                   help="drop clips with fewer tags (default 0 keeps untagged clips; text d2v needs 1)")
    p.add_argument("--no-decode-check", action="store_true", help="only check that each mp3 exists and is not empty")
    p.add_argument("-j", "--jobs", dest="n_jobs", type=_number(int, COUNT), help="threads of the decode check (default: up to 8)")
    p.add_argument("--overwrite", action="store_true", help="import again over an existing import (new splits)")

    p = add("factors", cmd_factors, "item and user latent factors from the train items' interactions (cold start)")
    p.add_argument("dataset")
    p.add_argument("--method", choices=("als", "pmi"), default="als")
    p.add_argument("--dim", type=_number(int, COUNT), default=200)
    p.add_argument("--seed", type=_number(int, SEED), default=0)
    p.add_argument("--all-items", action="store_true",
                   help="factorise all items' interactions to give val/test targets too (the seed's protocol)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="method parameter, e.g. regularization=0.1, iterations=15, alpha=1.0, pmi_source='class'")
    p.add_argument("--device", choices=FACTOR_DEVICES,
                   help="als: where implicit's ALS runs: gpu (CUDA; an error without it), cpu, or auto "
                        "(default: the GPU when implicit has CUDA and sees one); pmi runs on the CPU")

    p = add("pipeline", cmd_pipeline, "the seed's dummy chains: audio, text and fused models, and a table comparing "
                                      "them (dummy: genre classification; dummy-rec: cold-start recommendation)")
    p.add_argument("which", choices=("dummy", "dummy-rec"))
    p.add_argument("--epochs", type=_number(int, range_of(TrainingSection, "n_epochs")),
                   help="override training.n_epochs of every experiment (quick runs)")
    p.add_argument("--devices", type=_number(int, range_of(TrainingSection, "devices")), metavar="N",
                   help="train every model data-parallel on N devices (0 = all), as tartarus run --devices")

    p = add("dummy-data", cmd_dummy_data, "generate the embedded dummy dataset (DUMMY) under the data root")
    p.add_argument("--seed", type=_number(int, SEED), default=0)
    p.add_argument("--items", type=_number(int, COUNT), default=60)
    p.add_argument("--overwrite", action="store_true")

    p = add("export", cmd_export, "export a trained or pretrained model for serving without tartarus: a TensorFlow "
                                  "SavedModel or an ONNX file (batch axis free; checked against Keras after)")
    p.add_argument("model", metavar="MODEL", help="a trained model id (model_N) or a pretrained tagger "
                   "(MTT_musicnn, MSD_musicnn, MTT_vgg, MSD_vgg)")
    p.add_argument("--format", choices=("savedmodel", "onnx"), default="savedmodel",
                   help="savedmodel (default; on the tensorflow or jax backend) or onnx (on tensorflow: needs "
                        "tf2onnx and onnx, make onnx; on torch: onnx)")
    p.add_argument("--out", metavar="PATH", help="where to write (default: models/model_N/export/savedmodel or "
                   ".../model.onnx for a trained model; ./NAME.savedmodel or ./NAME.onnx for a pretrained one)")
    p.add_argument("-l", "--layer", help="export the model up to this layer (an embedding): a name (tartarus "
                   "architectures lists a pretrained model's), or the seed's index for a trained model")
    p.add_argument("--overwrite", action="store_true", help="replace an existing export at the destination")
    p.add_argument("--cache-dir", metavar="DIR", help="pretrained models: where the converted weights are kept "
                   "(default: $TARTARUS_CACHE, else ~/.cache/tartarus)")

    p = add("models", cmd_models, "list the trained models (models/trained_models.tsv), then unfinished ones "
                                  "(interrupted, running, or stopped before their first epoch)")
    p.add_argument("--clean", action="store_true",
                   help="remove the model folders of runs stopped before their first epoch (no checkpoint, no model)")
    return parser


def parse_command_line(command, parser=None):
    """The ``argparse.Namespace`` that ``command`` parses to, without running it.

    ``command`` is a line as the library's messages spell it (``tartarus factors DS --method als``,
    see :meth:`tartarus.layout.DataLayout.cli`): split as a POSIX shell would, its first word
    ``tartarus``. ``--param`` values are read as ``cmd_factors`` reads them. Raises ValueError naming
    the line and what the parser said, so that a hint printed to a user is held to the real parser
    (tests/test_hints.py); ``parser`` (default: :func:`build_parser`) saves rebuilding it per line.
    """
    import contextlib
    import io
    import shlex
    try:
        argv = shlex.split(str(command))
    except ValueError as exc:  # an unclosed quote
        raise ValueError(f"{command!r} is not a shell command line: {exc}") from None
    if not argv or argv[0] != "tartarus":
        raise ValueError(f"{command!r} does not start with 'tartarus'")
    parser = parser or build_parser()
    said = io.StringIO()
    try:
        # argparse reports a bad line on stderr and exits: keep both, for the ValueError
        with contextlib.redirect_stderr(said), contextlib.redirect_stdout(said):
            args = parser.parse_args(argv[1:])
    except SystemExit:
        lines = [ln for ln in said.getvalue().splitlines() if ln.strip()]
        raise ValueError(f"{command!r} does not parse: {lines[-1] if lines else 'no message'}") from None
    for text in getattr(args, "param", None) or ():
        try:
            parse_param(text)
        except ConfigError as exc:
            raise ValueError(f"{command!r} does not parse: --param {text!r}: {exc}") from None
    return args


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    verbose = verbose_requested(getattr(args, "verbose", False))
    # the CLI owns the process: TensorFlow's start-up and retracing chatter off the terminal, unless asked for
    undo_quiet = configure_cli(verbose)
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
    except OSError as exc:  # a write no tartarus.fileio writer saw: a full or read-only disk is one line too
        import errno
        from .errors import OutputError
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG):
            print(f"tartarus: error: {OutputError(exc.filename or '(unknown file)', exc.errno)}", file=sys.stderr)
            return 2
        if exc.errno in (errno.EACCES, errno.EPERM) and exc.filename:
            print(f"tartarus: error: permission denied: {exc.filename}", file=sys.stderr)
            return 2
        raise
    finally:
        undo_quiet()
    return 0


if __name__ == "__main__":
    sys.exit(main())
