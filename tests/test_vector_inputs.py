"""Feeding vector inputs: dense and sparse train_data files, alignment by id, multi-input batches."""

import numpy as np
import pytest
import scipy.sparse as sp

from tartarus.errors import DataMismatch, MissingInput
from tartarus.fileio import save_npy, save_sparse, write_lines
from tartarus.inputs import VectorDataset, iter_vector_batches, load_vector_input
from tartarus.layout import DataLayout


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
