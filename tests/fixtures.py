"""Small readers the tests share, kept out of the package because only tests use them."""

from __future__ import annotations

from contextlib import contextmanager

from tartarus import fileio
from tartarus.datasets import DUMMY
from tartarus.errors import DataMismatch
from tartarus.layout import DataLayout


def dummy_split(layout, set_, dataset=DUMMY):
    """``(ids, y)`` of one split of the dummy dataset: the items index's ids (list of str) and the
    one-hot targets ``y_{set}_class_{n_classes}_{dataset}.npy`` ((n_items, n_classes) float32), checked
    to have one row per id. ``layout``: a DataLayout or a data root."""
    layout = layout if isinstance(layout, DataLayout) else DataLayout(layout)
    ids = fileio.read_items_index(layout.require(layout.items_index(set_, dataset), layout.cli("dummy-data")))
    n_classes = len(fileio.read_lines(layout.genre_labels(dataset)))
    y_path = layout.y(set_, "class", n_classes, dataset)
    y = fileio.load_npy(y_path)
    if len(ids) != len(y):
        raise DataMismatch(f"{layout.items_index(set_, dataset)} has {len(ids)} ids but {y_path} has {len(y)} rows")
    return ids, y


@contextmanager
def local_cluster(n_workers=2):
    """A Dask ``LocalCluster`` of ``n_workers`` worker processes (one thread each, its dashboard on a
    free port, so that test runs side by side do not collide): the stand-in for a real cluster in
    the tests of ``--scheduler``."""
    import distributed

    with distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster:
        yield cluster


def dummy_text_recommender(root, evaluate):
    """A dummy data root (0.5 s clips) with 4-d ALS factors and ``dummy_text_als`` (rec_sparse on tf-idf)
    trained for 1 epoch, evaluated on test when ``evaluate``. Returns ``(DataLayout, model_id)``."""
    from tartarus import text
    from tartarus.config import Registry
    from tartarus.datasets.dummy import generate_dummy
    from tartarus.pipeline import make_factors, run_experiment

    layout = DataLayout(root)
    generate_dummy(layout.root, clip_seconds=0.5)
    reg = Registry()
    entry = reg.dataset("DUMMY")
    make_factors(layout, "DUMMY", "als", 4, seed=0)
    text.build_vsm(layout, "DUMMY", max_df=entry.max_df, min_df=entry.min_df,
                   max_features=entry.max_features or None, n_words=entry.n_words)
    result = run_experiment(reg.experiment("dummy_text_als", ["training.n_epochs=1"]), ("bow",), layout,
                            verbose=0, evaluate=evaluate)
    return layout, result.model_id
