"""Feeding vector inputs: dense and sparse train_data files, alignment by id, multi-input batches."""

import numpy as np
import pytest
import scipy.sparse as sp

from tartarus.errors import DataMismatch, MissingInput
from tartarus.fileio import save_npy, save_sparse, write_lines
from tartarus.inputs import VectorDataset, iter_vector_batches, load_vector_input
from tartarus.layout import DataLayout
from tests.standins import write_vector_features


@pytest.fixture
def layout(tmp_path):
    lay = DataLayout(tmp_path)
    write_lines(lay.items_index("train", "D"), ["a", "b", "c"])
    return lay


def test_dense_input_rows_follow_the_split(layout):
    save_npy(layout.x("train", "emb", "D"), np.arange(6.0).reshape(3, 2))
    x = load_vector_input(layout, "train", "emb", "D", ["a", "b", "c"], layout.items_index("train", "D"))
    assert x.tolist() == [[0, 1], [2, 3], [4, 5]]


def test_own_index_reorders_by_id(layout):
    save_npy(layout.x("train", "emb", "D"), np.array([[3.0], [1.0], [2.0], [9.0]]))
    write_lines(layout.items_index("train", "D", "emb"), ["c", "a", "b", "z"])
    x = load_vector_input(layout, "train", "emb", "D", ["a", "b", "c"], layout.items_index("train", "D"))
    assert x[:, 0].tolist() == [1.0, 2.0, 3.0]


def test_row_mismatch_names_both_files_and_counts(layout):
    save_npy(layout.x("train", "emb", "D"), np.zeros((2, 4)))
    with pytest.raises(DataMismatch) as exc:
        load_vector_input(layout, "train", "emb", "D", ["a", "b", "c"], layout.items_index("train", "D"))
    msg = str(exc.value)
    assert "X_train_emb_D.npy has 2 rows" in msg and "items_index_train_D.tsv lists 3 items" in msg


def test_own_index_missing_ids_is_an_error(layout):
    save_npy(layout.x("train", "emb", "D"), np.zeros((2, 4)))
    write_lines(layout.items_index("train", "D", "emb"), ["a", "b"])
    with pytest.raises(DataMismatch, match=r"items_index_train_emb_D.tsv lacks 1 of the 3 items .* e.g. c"):
        load_vector_input(layout, "train", "emb", "D", ["a", "b", "c"], layout.items_index("train", "D"))


def test_missing_input_names_the_command(layout):
    with pytest.raises(MissingInput) as exc:
        load_vector_input(layout, "train", "model_1-pred_9", "D", ["a", "b", "c"], layout.items_index("train", "D"))
    assert "X_train_model_1-pred_9_D.npy" in str(exc.value)
    assert "tartarus predict model_1 -l 9 -s train" in str(exc.value)
    with pytest.raises(MissingInput, match="tartarus text vsm D"):
        load_vector_input(layout, "train", "bow", "D", ["a", "b", "c"], layout.items_index("train", "D"))


def test_sparse_input_is_densified_per_batch(layout):
    m = sp.random(3, 50, density=0.2, format="csr", random_state=1, dtype=np.float32)
    save_sparse(layout.x("train", "bow", "D", sparse=True), m)
    x = load_vector_input(layout, "train", "bow", "D", ["a", "b", "c"], layout.items_index("train", "D"))
    assert sp.issparse(x)
    ds = VectorDataset([x, np.arange(6.0).reshape(3, 2)], np.eye(3), batch_size=2, shuffle=True, seed=0)
    seen = []
    for i in range(len(ds)):
        (xb, eb), yb = ds[i]
        assert isinstance(xb, np.ndarray) and xb.shape[1] == 50 and xb.dtype == np.float32
        for row, e, y in zip(xb, eb, yb):
            k = int(np.argmax(y))
            assert np.allclose(row, m[k].toarray()[0]) and e.tolist() == [2 * k, 2 * k + 1]
            seen.append(k)
    assert sorted(seen) == [0, 1, 2]
    blocks = [b for _, b in iter_vector_batches([x], batch_size=2)]
    assert np.allclose(np.vstack(blocks), m.toarray())


def test_non_finite_input_is_refused(layout):
    save_npy(layout.x("train", "emb", "D"), np.array([[1.0], [np.nan], [2.0]]))
    with pytest.raises(DataMismatch, match="NaN"):
        load_vector_input(layout, "train", "emb", "D", ["a", "b", "c"], layout.items_index("train", "D"))


# ------------------------------------------------- vector features in HDF5 (the seed's genres_*)
def _vector_experiment(architecture="3"):
    from tartarus.config import experiment_from_dict
    return experiment_from_dict("vec_h5", {
        "dataset": {"dataset": "D", "fact": "class", "dim": 2, "evaluation": "multiclass", "npatches": 1, "window": 1},
        "training": {"n_epochs": 1, "n_minibatch": 2, "loss_func": "categorical_crossentropy"},
        "cnn": {"architecture": architecture, "n_dense": 4, "n_dense_2": 0, "dropout_factor": 0.0,
                "final_activation": "softmax"}})


def test_hdf5_vector_features_are_read_by_id_without_a_suffix(layout):
    """No META_SUFFIX: a vector model reads patches_{set}_{ds}_1x1.hdf5, rows matched to items by id."""
    from tartarus.inputs import PatchDataset, load_inputs
    from tartarus.train import check_suffixes

    ids = ["a", "b", "c"]
    x = np.array([[3.0, 30.0], [1.0, 10.0], [2.0, 20.0]], dtype=np.float32)  # rows of c, a, b
    write_vector_features(layout.patches("train", "D", 1, 1), ["c", "a", "b"], x)
    assert layout.patches("train", "D", 1, 1).name == "patches_train_D_1x1.hdf5"
    experiment = _vector_experiment()
    check_suffixes(experiment, ())  # accepted: the vectors come from the HDF5 file
    path, inputs = load_inputs(layout, experiment, (), "train", ids, layout.items_index("train", "D"))
    assert path == layout.patches("train", "D", 1, 1) and inputs is None
    targets = np.array([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0]], dtype=np.float32)  # a, b, c
    feed = PatchDataset(path, targets, ids, batch_size=3, shuffle=False, in_memory=True)
    xb, yb = feed[0]
    assert xb.shape == (3, 2)
    for row, y in zip(xb, yb):  # each vector comes with its own item's target
        assert row[0] == y[0] and row[1] == 10 * y[0]


def test_hdf5_vector_features_train_and_predict_per_item(layout):
    import h5py

    from tartarus.fileio import load_npy
    from tartarus.models import load_model
    from tartarus.predict import predict_items
    from tartarus.pipeline import run_experiment as run

    rng = np.random.default_rng(0)
    for set_, n in (("train", 8), ("val", 4), ("test", 4)):
        ids = [f"{set_}{i}" for i in range(n)]
        write_lines(layout.items_index(set_, "D"), ids)
        save_npy(layout.y(set_, "class", 2, "D"), np.eye(2, dtype=np.float32)[np.arange(n) % 2])
        order = rng.permutation(n)
        write_vector_features(layout.patches(set_, "D", 1, 1), [ids[i] for i in order],
                       rng.normal(size=(n, 5)).astype(np.float32))
    result = run(_vector_experiment(), (), layout, verbose=0)
    assert result.epochs == 1 and result.results["test"]["n_items"] == 4
    model = load_model(layout.model_file(result.model_id))
    assert tuple(model.inputs[0].shape) == (None, 5)
    # per item, in items_index order: the model's output on that item's own row of the file
    with h5py.File(layout.patches("test", "D", 1, 1), "r") as f:
        rows = dict(zip((s.decode() for s in f["index"][:]), f["features"][:]))
    got = predict_items(model, layout, result.experiment, "test")
    test_ids = ["test0", "test1", "test2", "test3"]
    assert got.item_ids == test_ids
    expected = np.asarray(model.predict_on_batch(np.stack([rows[i] for i in test_ids])))
    np.testing.assert_allclose(got.values, expected, atol=1e-5)
    np.testing.assert_allclose(load_npy(layout.prediction(result.model_id, "test")), expected, atol=1e-5)


def test_hdf5_features_must_be_vectors_and_present(layout):
    from tartarus.inputs import load_inputs

    experiment = _vector_experiment()
    with pytest.raises(MissingInput, match=r"'features' \(N, D\).*patches_train_D_1x1\.hdf5"):
        load_inputs(layout, experiment, (), "train", ["a", "b", "c"], layout.items_index("train", "D"))
    write_vector_features(layout.patches("train", "D", 1, 1), ["a", "b", "c"], np.zeros((3, 1, 4, 2), np.float32))
    with pytest.raises(DataMismatch, match=r"patches_train_D_1x1\.hdf5.*\(N, D\), got \(3, 1, 4, 2\)"):
        load_inputs(layout, experiment, (), "train", ["a", "b", "c"], layout.items_index("train", "D"))
