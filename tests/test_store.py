import dataclasses
import multiprocessing as mp
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import scipy.sparse as sp

from tartarus.errors import DataMismatch, MissingInput
from tartarus.fileio import atomic_path, load_npy, load_sparse, read_json, read_lines, save_sparse, write_json
from tartarus.layout import DataLayout
from tartarus.store import (ModelRecord, allocate_model_id, file_record, read_record, record_trained, trained_models,
                            write_record)


def test_layout_names_follow_the_seed(tmp_path):
    lay = DataLayout(tmp_path)
    assert lay.items_index("train", "SUPER") == tmp_path / "splits/items_index_train_SUPER.tsv"
    assert lay.y("test", "class", 3, "SUPER") == tmp_path / "splits/y_test_class_3_SUPER.npy"
    assert lay.patches("val", "SUPER", 1, 15.0) == tmp_path / "patches/patches_val_SUPER_1x15.hdf5"
    assert lay.patches("val", "SUPER", 3, 2.5).name == "patches_val_SUPER_3x2.5.hdf5"
    suffix = lay.embedding_suffix("model_1", 9)
    assert lay.x("test", suffix, "DUMMY") == tmp_path / "train_data/X_test_model_1-pred_9_DUMMY.npy"
    assert lay.items_index("test", "DUMMY", suffix) == tmp_path / "train_data/items_index_test_model_1-pred_9_DUMMY.tsv"
    assert lay.x("train", "bow", "D", sparse=True).name == "X_train_bow_D.npz"
    assert lay.prediction("model_2", "test") == tmp_path / "predictions/pred_model_2_test.npy"
    assert lay.prediction_index("model_2", "test").name == "index_pred_model_2_test.tsv"


def test_default_root_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TARTARUS_DATA", str(tmp_path))
    assert DataLayout().root == tmp_path
    monkeypatch.delenv("TARTARUS_DATA")
    assert str(DataLayout().root) == "data"


def test_missing_input_names_path_and_command(tmp_path):
    lay = DataLayout(tmp_path)
    with pytest.raises(MissingInput) as exc:
        load_npy(lay.y("train", "class", 3, "X"), "tartarus dummy-data")
    assert str(lay.y("train", "class", 3, "X")) in str(exc.value)
    assert "make it with: tartarus dummy-data" in str(exc.value)


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.npy"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            np.save(tmp, np.arange(3))
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    with atomic_path(target) as tmp:
        np.save(tmp, np.arange(3))
    assert [p.name for p in tmp_path.iterdir()] == ["out.npy"]


def test_pickled_arrays_are_refused(tmp_path):
    path = tmp_path / "obj.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError):
        load_npy(path)


def test_sparse_both_layouts(tmp_path):
    m = sp.random(5, 7, density=0.3, format="csr", random_state=0)
    save_sparse(tmp_path / "a.npz", m)
    assert (load_sparse(tmp_path / "a.npz") != m).nnz == 0
    np.savez(tmp_path / "seed.npz", data=m.data, indices=m.indices, indptr=m.indptr, shape=m.shape)
    assert (load_sparse(tmp_path / "seed.npz") != m).nnz == 0


def test_read_lines_handles_bom_cr_and_no_final_newline(tmp_path):
    p = tmp_path / "ids.tsv"
    p.write_bytes("\ufeffS1\rS2\r\nS3".encode("utf-8"))
    assert read_lines(p) == ["S1", "S2", "S3"]


def test_model_ids_are_unique_under_threads(tmp_path):
    lay = DataLayout(tmp_path)
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda _: allocate_model_id(lay), range(40)))
    assert len(set(ids)) == 40
    assert sorted(int(i.split("_")[1]) for i in ids) == list(range(1, 41))


def _allocate_many(root, n, queue):
    lay = DataLayout(root)
    queue.put([allocate_model_id(lay) for _ in range(n)])


def test_model_ids_are_unique_across_processes(tmp_path):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_allocate_many, args=(str(tmp_path), 10, queue)) for _ in range(3)]
    for p in procs:
        p.start()
    ids = [i for _ in procs for i in queue.get(timeout=60)]
    for p in procs:
        p.join()
    assert len(ids) == len(set(ids)) == 30


def test_trained_models_index_and_file_record(tmp_path):
    lay = DataLayout(tmp_path)
    record_trained(lay, "model_1", "dummy_audio", "DUMMY", (), 3, 0.5)
    record_trained(lay, "model_2", "dummy_multimodal", "DUMMY", ("model_1-pred_9", "model_2-pred_5"), 4, None)
    rows = trained_models(lay)
    assert [r["model_id"] for r in rows] == ["model_1", "model_2"]
    assert rows[1]["suffixes"] == "model_1-pred_9,model_2-pred_5"
    f = tmp_path / "x.bin"
    f.write_bytes(b"abc")
    rec = file_record(f)
    assert rec["bytes"] == 3
    assert rec["sha256"] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_layout_spells_embedding_suffixes_both_ways(tmp_path):
    lay = DataLayout(tmp_path)
    for model_id, layer in (("model_1", "9"), ("model_12", "dense_2"), ("model_3", "pred_x")):
        assert lay.parse_embedding_suffix(lay.embedding_suffix(model_id, layer)) == (model_id, layer)
    assert lay.parse_embedding_suffix("bow") is None
    assert lay.predictions_of("model_1", "val", "D") == (lay.prediction("model_1", "val"),
                                                         lay.prediction_index("model_1", "val"))
    assert lay.predictions_of("model_1", "val", "D", layer=9) == (lay.x("val", "model_1-pred_9", "D"),
                                                                  lay.items_index("val", "D", "model_1-pred_9"))
    assert lay.predictions_of("model_1", "test", "E", other_dataset="E")[0].name == "pred_model_1_test_E.npy"
    assert lay.best_weights("model_4").name.endswith(".weights.h5")  # Keras refuses any other name


def _experiment_dict():
    from tartarus.config import Registry
    return {"name": "dummy_audio", **Registry().experiment("dummy_audio").to_dict()}


def test_model_record_round_trip_and_experiment(tmp_path):
    lay = DataLayout(tmp_path)
    lay.model_dir("model_1").mkdir(parents=True)
    record = ModelRecord("model_1", _experiment_dict(), ("bow",), [(16, 96, 1), (40,)], input_stats=[{"mean": 0.5}],
                         backend="jax", audio_params={"n_frames": 16}, resume_overrides=[{"at_epoch": 2}])
    write_record(lay, record)
    back = read_record(lay, "model_1")
    saved = read_json(lay.model_config("model_1"))  # JSON keeps no tuples: the experiment's come back as lists
    assert back == dataclasses.replace(record, experiment=saved["experiment"])
    assert back.to_dict() == saved
    assert back.load_experiment().name == "dummy_audio" and back.load_experiment().dataset.dataset == "DUMMY"
    # the JSON keys are those of the config.json files written so far
    assert list(saved) == [
        "model_id", "experiment", "suffixes", "input_shapes", "input_stats", "input_prescaled", "backend",
        "audio_params", "resume_overrides"]


def test_model_record_reads_older_configs(tmp_path):
    lay = DataLayout(tmp_path)
    # a config.json of an earlier version: no model_id, shapes or settings; a key unknown today
    write_json(lay.model_config("model_2"), {"experiment": _experiment_dict(), "workers": 4})
    record = read_record(lay, "model_2")
    assert (record.model_id, record.suffixes, record.audio_params, record.input_prescaled) == ("model_2", (), None, False)
    write_record(lay, record)  # the unknown key is kept as it was
    assert read_json(lay.model_config("model_2"))["workers"] == 4
    with pytest.raises(MissingInput, match="model_3.*tartarus run EXPERIMENT"):
        read_record(lay, "model_3")
    write_json(lay.model_config("model_4"), {"model_id": "model_4"})
    with pytest.raises(DataMismatch, match="config.json: expected a JSON object with an 'experiment' object"):
        read_record(lay, "model_4")
