"""The training protocol (issue 10, section 2) and "every config key is read, or it is an error".

Early stopping as the seed's Keras 2.1.5 counted it, the monitor chosen by the head, the last
epoch's weights kept (or the best with ``restore_best``), the seed's sequential validation split,
``nsamples``, ``sparse``, the metadata flags, removed keys, and a check that every key of every
config section is read by the code. Tiny vector experiments: each run takes a few seconds.
"""

import dataclasses
import json
import sys

import keras
import numpy as np
import pytest

from tartarus.pretrained import weights_installed
import scipy.sparse as sp

from tartarus.config import Registry, experiment_from_dict
from tartarus.config import schema
from tartarus.errors import ConfigError
from tartarus.fileio import save_npy, save_sparse, write_lines
from tartarus.layout import DataLayout
from tartarus.protocol import protocol_summary, resolve_monitor
from tartarus.pipeline import run_experiment
from tartarus.train import EpochCheckpoint, run, split_train_val

DS = "V"
SIZES = {"train": 30, "val": 6, "test": 6}


def write_vector_dataset(root, sizes=SIZES, flip_val=False, sparse=False, seed=0):
    """Three separable classes over 4-d inputs; column 3 of X holds each item's row number.

    flip_val : val items get the next class as their label, so the better the model fits the train
    items the worse it does on val (the best validation epoch is an early one).
    """
    layout = DataLayout(root)
    rng = np.random.default_rng(seed)
    for set_, n in sizes.items():
        ids = [f"{set_[:2]}{i:03d}" for i in range(n)]
        labels = np.arange(n) % 3
        x = rng.normal(scale=0.3, size=(n, 4))
        x[np.arange(n), labels] += 2.0
        x[:, 3] = np.arange(n)  # identifies the row in tests of the splits
        y = np.eye(3)[(labels + 1) % 3 if flip_val and set_ == "val" else labels]
        write_lines(layout.items_index(set_, DS), ids)
        save_npy(layout.y(set_, "class", 3, DS), y.astype(np.float32))
        if sparse:
            save_sparse(layout.x(set_, "emb", DS, sparse=True), sp.csr_matrix(x.astype(np.float32)))
        else:
            save_npy(layout.x(set_, "emb", DS), x.astype(np.float32))
    layout.genre_labels(DS).write_text("a\nb\nc\n")
    return layout


def vector_experiment(dataset=None, training=None, cnn=None, name="vec"):
    """Logistic regression (architecture 3, no hidden layer) over the input ``emb`` of dataset V."""
    raw = {"dataset": {"dataset": DS, "fact": "class", "dim": 3, "evaluation": "multiclass", **(dataset or {})},
           "training": {"n_epochs": 20, "n_minibatch": 8, "loss_func": "categorical_crossentropy",
                        "learning_rate": 0.05, **(training or {})},
           "cnn": {"architecture": "3", "n_dense": 0, "n_dense_2": 0, "dropout_factor": 0.0,
                   "final_activation": "softmax", **(cnn or {})}}
    return experiment_from_dict(name, raw)


def stop_epoch(values, patience, mode):
    """Reference: the epoch (1-based) after which the seed's EarlyStopping stops, or None.

    An epoch improves when strictly better than the best so far; after ``patience`` epochs in a row
    without improvement training stops (Keras 2.1.5, the seed's requirements.txt).
    """
    best, wait = None, 0
    for epoch, value in enumerate(values, 1):
        if best is None or (value > best if mode == "max" else value < best):
            best, wait = value, 0
        else:
            wait += 1
        if wait >= patience:
            return epoch
    return None


# ------------------------------------------------------------------------------ early stopping
def _feed(checkpoint, values, key):
    """Drive ``checkpoint`` through epochs with ``values`` of ``key``; return the epochs run."""
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(loss="mse")
    checkpoint.set_model(model)
    for epoch, value in enumerate(values):
        checkpoint.on_epoch_end(epoch, {"loss": 1.0, key: value})
        if model.stop_training:
            return epoch + 1
    return len(values)


@pytest.mark.parametrize("values, patience, mode, expected", [
    # 0.40 again at epoch 4 is no improvement: improvements at 1, 2, 6, then 4 without -> stop after 10
    ([0.5, 0.4, 0.45, 0.4, 0.41, 0.39, 0.5, 0.6, 0.7, 0.8, 0.9], 4, "min", 10),
    # patience 3: epochs 3, 4, 5 do not beat 0.40 -> stop after 5, before the improvement at 6
    ([0.5, 0.4, 0.45, 0.4, 0.41, 0.39, 0.5, 0.6, 0.7, 0.8, 0.9], 3, "min", 5),
    ([0.5, 0.4, 0.45, 0.4, 0.41, 0.39, 0.5, 0.6, 0.7, 0.8, 0.9], 1, "min", 3),
    # a tie is no improvement: epochs 3, 4, 5 equal the best 0.4 -> stop after 5
    ([0.5, 0.4, 0.4, 0.4, 0.4, 0.3], 3, "min", 5),
    # accuracies: higher is better, ties do not count
    ([0.3, 0.5, 0.5, 0.5, 0.5, 0.9], 3, "max", 5),
    ([0.3, 0.5, 0.5, 0.6, 0.5, 0.5, 0.5, 0.5], 4, "max", 8),
])
def test_patience_counts_as_the_seed(tmp_path, values, patience, mode, expected):
    assert stop_epoch(values, patience, mode) == expected  # the reference agrees with the hand count
    checkpoint = EpochCheckpoint(DataLayout(tmp_path), "model_1", "val_m", patience, True, mode=mode)
    assert _feed(checkpoint, values, "val_m") == expected
    state = json.loads(DataLayout(tmp_path).training_state("model_1").read_text())
    assert state["stopped"] and state["wait"] == patience and state["mode"] == mode


def test_early_stopping_state_survives_a_resume(tmp_path):
    values = [0.5, 0.4, 0.45, 0.4, 0.41, 0.39, 0.5, 0.6, 0.7, 0.8, 0.9]
    layout = DataLayout(tmp_path)
    first = EpochCheckpoint(layout, "model_1", "val_loss", 4, True)
    assert _feed(first, values[:7], "val_loss") == 7  # killed after epoch 7, waiting 1 since epoch 6
    state = json.loads(layout.training_state("model_1").read_text())
    assert (state["best"], state["wait"], state["best_epoch"]) == (0.39, 1, 6)
    resumed = EpochCheckpoint(layout, "model_1", "val_loss", 4, True, state)
    assert _feed(resumed, values[7:], "val_loss") == 3  # epochs 8, 9, 10: the stop falls on epoch 10


def test_a_monitor_missing_from_the_logs_is_an_error(tmp_path):
    checkpoint = EpochCheckpoint(DataLayout(tmp_path), "model_1", "val_accuracy", 4, True, mode="max")
    with pytest.raises(ConfigError, match="'val_accuracy'.*logs hold only: loss, val_loss"):
        _feed(checkpoint, [0.5], "val_loss")


def test_monitor_follows_the_head():
    softmax = vector_experiment()
    assert resolve_monitor(softmax) == ("val_accuracy", "max")
    assert resolve_monitor(softmax, has_val=False) == ("accuracy", "max")
    for head, loss, evaluation in (("sigmoid", "binary_crossentropy", "multilabel"), ("linear", "cosine", "recommendation")):
        exp = vector_experiment({"evaluation": evaluation}, {"loss_func": loss}, {"final_activation": head})
        assert resolve_monitor(exp) == ("val_loss", "min")
        assert resolve_monitor(exp, has_val=False) == ("loss", "min")
    assert resolve_monitor(vector_experiment(training={"monitor": "val_loss"})) == ("val_loss", "min")
    regression = vector_experiment({"evaluation": "recommendation"}, {"loss_func": "cosine", "monitor": "val_accuracy"},
                                   {"final_activation": "linear"})
    with pytest.raises(ConfigError, match="has no accuracy: monitor a loss"):
        resolve_monitor(regression)
    no_val = vector_experiment(training={"monitor": "val_loss", "val_from_file": False, "validation": 0.0})
    with pytest.raises(ConfigError, match="needs a validation split"):
        resolve_monitor(no_val)


def test_softmax_run_stops_on_val_accuracy_with_patience(tmp_path):
    layout = write_vector_dataset(tmp_path, flip_val=True)
    result = run(vector_experiment(training={"patience": 3}), ("emb",), layout, verbose=0)
    accuracy = result.history["val_accuracy"]
    assert result.epochs == stop_epoch(accuracy, 3, "max") < 20
    state = json.loads(layout.training_state(result.model_id).read_text())
    assert state["monitor"] == "val_accuracy" and result.best == max(accuracy)
    # the seed's `predict -p` (from patches files) means nothing for a vector model: refused, not ignored
    from tartarus.predict import predict
    with pytest.raises(ConfigError, match="predict -p predicts from spectrogram patches files, but model_1"):
        predict(layout, result.model_id, ["test"], patches=True)


def _val_loss_of_saved_model(layout, model_id):
    from tartarus.models import load_model
    x = np.load(layout.x("val", "emb", DS))
    y = np.load(layout.y("val", "class", 3, DS))
    p = np.clip(load_model(layout.model_file(model_id)).predict(x, verbose=0), 1e-7, 1 - 1e-7)
    return float(np.mean(-np.sum(y * np.log(p), axis=1)))


@pytest.mark.parametrize("restore_best", [False, True])
def test_last_epoch_weights_are_kept_unless_restore_best(tmp_path, restore_best):
    layout = write_vector_dataset(tmp_path, flip_val=True)
    exp = vector_experiment(training={"n_epochs": 6, "early_stopping": False, "monitor": "val_loss",
                                      "restore_best": restore_best})
    result = run(exp, ("emb",), layout, verbose=0)
    val_loss = result.history["val_loss"]
    assert result.epochs == 6 and int(np.argmin(val_loss)) < 5  # the best epoch is not the last
    expected = min(val_loss) if restore_best else val_loss[-1]
    assert _val_loss_of_saved_model(layout, result.model_id) == pytest.approx(expected, rel=1e-3)
    assert layout.model_dir(result.model_id).joinpath("best.weights.h5").exists() == restore_best


def test_published_experiments_get_the_seed_protocol():
    reg = Registry()
    published = [n for n in reg.experiment_names() if reg.source(n).name == "papers.toml"
                 or n.startswith("rec_")]
    checked = 0
    for name in published:
        try:
            exp = reg.experiment(name)
        except ConfigError:  # an abstract base
            continue
        t = exp.training
        assert (t.early_stopping, t.patience, t.monitor, t.restore_best, t.val_split) == (True, 4, "auto", False, "seed"), name
        checked += 1
    assert checked >= 20
    # the dummy experiments keep restoring the best val-loss epoch with a longer patience
    dummy = reg.experiment("dummy_audio").training
    assert (dummy.patience, dummy.restore_best, dummy.monitor) == (10, True, "val_loss")


def test_show_prints_the_protocol(capsys):
    from tartarus.cli import main
    main(["show", "single-label-vector"])
    out = capsys.readouterr().out
    assert "monitor: val_accuracy (higher is better)" in out and "patience: 4" in out
    assert "weights_kept: last epoch's (restore_best = false)" in out
    summary = protocol_summary(Registry().experiment("rec_sparse"))
    assert summary["monitor"].startswith("val_loss") and "sequential" in summary["validation"]


# ---------------------------------------------------------------------------- validation split
def _rows(split):
    return split.inputs[0][:, 3].astype(int).tolist()


def test_sequential_split_is_the_seeds(tmp_path):
    layout = write_vector_dataset(tmp_path)
    exp = vector_experiment(training={"val_from_file": False})  # val_split "seed", validation 0.1, test 0.1
    train, val = split_train_val(layout, exp, ("emb",))
    # 30 items: int(0.8 * 30) = 24 train, int(0.1 * 30) = 3 val, the last 3 left out
    assert _rows(train) == list(range(24)) and _rows(val) == [24, 25, 26]
    assert train.item_ids == [f"tr{i:03d}" for i in range(24)] and val.y.argmax(1).tolist() == [0, 1, 2]
    # the seed's arithmetic on 25 items: int(0.8 * 25) = 20 train, int(0.1 * 25) = 2 val
    train, val = split_train_val(write_vector_dataset(tmp_path / "b", {"train": 25, "val": 2, "test": 2}), exp, ("emb",))
    assert _rows(train) == list(range(20)) and _rows(val) == [20, 21]


def test_random_split_and_nsamples(tmp_path):
    layout = write_vector_dataset(tmp_path)
    exp = vector_experiment(training={"val_from_file": False, "val_split": "random", "validation": 0.2})
    train, val = split_train_val(layout, exp, ("emb",))
    assert len(val.item_ids) == 6 and len(train.item_ids) == 24
    assert sorted(_rows(train) + _rows(val)) == list(range(30)) and _rows(val) != list(range(24, 30))
    # nsamples: the first N train items, and the sequential split of those
    exp = vector_experiment({"nsamples": 10}, {"val_from_file": False})
    train, val = split_train_val(layout, exp, ("emb",))
    assert _rows(train) == list(range(8)) and _rows(val) == [8]
    train, val = split_train_val(layout, vector_experiment({"nsamples": "12"}), ("emb",))
    assert _rows(train) == list(range(12)) and len(val.item_ids) == 6  # val from its file
    with pytest.raises(ConfigError, match="dataset.nsamples must be \"all\" or a positive number"):
        split_train_val(layout, vector_experiment({"nsamples": "half"}), ("emb",))
    with pytest.raises(ConfigError, match="gives 0 to train"):
        split_train_val(layout, vector_experiment(training={"val_from_file": False, "validation": 0.5, "test": 0.5}),
                        ("emb",))


# ----------------------------------------------------------------------------- dataset keys
def test_sparse_key_chooses_the_file(tmp_path):
    dense = write_vector_dataset(tmp_path / "dense")
    sparse = write_vector_dataset(tmp_path / "sparse", sparse=True)
    train, _ = split_train_val(sparse, vector_experiment({"sparse": True}), ("emb",))
    assert sp.issparse(train.inputs[0])
    with pytest.raises(ConfigError, match=r"dataset.sparse = false .*X_train_emb_V.npz is a sparse matrix"):
        split_train_val(sparse, vector_experiment(), ("emb",))
    with pytest.raises(ConfigError, match=r"dataset.sparse = true .*X_train_emb_V.npy is a dense array"):
        split_train_val(dense, vector_experiment({"sparse": True}), ("emb",))
    # as in the seed, a model's predictions stay dense under sparse = true
    for set_ in SIZES:
        save_npy(dense.x(set_, "model_1-pred_3", DS), np.load(dense.x(set_, "emb", DS)))
    train, _ = split_train_val(dense, vector_experiment({"sparse": True}), ("model_1-pred_3",))
    assert isinstance(train.inputs[0], np.ndarray)


def test_rec_dense_refuses_a_sparse_input(tmp_path):
    layout = write_vector_dataset(tmp_path, sparse=True)
    reg = Registry()
    assert reg.experiment("rec_sparse").dataset.sparse and not reg.experiment("rec_dense").dataset.sparse
    exp = reg.experiment("rec_dense", ["dataset.dataset='V'", "dataset.fact='class'", "dataset.dim=3",
                                       "training.normalize_y=False"])
    with pytest.raises(ConfigError, match="dataset.sparse = false"):
        run(exp, ("emb",), layout, verbose=0)


def test_word_sequences_are_cut_to_cnn_sequence_length(tmp_path):
    from tartarus.errors import DataMismatch
    from tartarus.inputs import first_words
    x = np.arange(12).reshape(2, 6)
    assert first_words(x, 4, "X_train_w2v_D.npy", "D").tolist() == [[0, 1, 2, 3], [6, 7, 8, 9]]
    with pytest.raises(DataMismatch, match=r"X_train_w2v_D.npy holds sequences of shape \(6,\), but "
                                           r"cnn.sequence_length is 8.*--sequence-length 8"):
        first_words(x, 8, "X_train_w2v_D.npy", "D")


def test_metadata_flags_must_agree_with_the_inputs(tmp_path):
    layout = write_vector_dataset(tmp_path)
    ok = vector_experiment({"with_metadata": True, "only_metadata": True})
    split_train_val(layout, ok, ("emb",))
    with pytest.raises(ConfigError, match=r"dataset.with_metadata = false, but cnn.architecture 3 .* given 1 input"):
        split_train_val(layout, vector_experiment({"with_metadata": False}), ("emb",))
    with pytest.raises(ConfigError, match=r"dataset.only_metadata = false"):
        split_train_val(layout, vector_experiment({"only_metadata": False}), ("emb",))


def test_removed_key_says_what_replaces_it(tmp_path, monkeypatch):
    d = tmp_path / "experiments"
    d.mkdir()
    (d / "old.toml").write_text('[old]\ndataset = { dataset = "V", dim = 3, configuration = "old" }\n')
    (d / "datasets.toml").write_text('[D]\naudio_folder = "a"\nold_key = 1\n')
    with pytest.raises(ConfigError) as exc:
        Registry(d).experiment("old")
    assert "dataset.configuration: this key was removed; use instead: the experiment's name" in str(exc.value)
    # a model saved before the removal still loads: the key had no effect on it
    saved = vector_experiment().to_dict()
    saved["dataset"]["configuration"] = "vec"
    assert experiment_from_dict("vec", saved, saved=True).dataset.dataset == DS
    with pytest.raises(ConfigError, match="removed"):
        experiment_from_dict("vec", saved)
    # the mechanism serves every section, dataset entries included
    monkeypatch.setitem(schema.REMOVED_KEYS, "datasets.old_key", "new_key")
    with pytest.raises(ConfigError, match=r"dataset 'D'.old_key: this key was removed; use instead: new_key"):
        Registry(d).dataset("D")


# --------------------------------------------------------------------- every key is read
SECTIONS = {**schema.EXPERIMENT_SECTIONS, "datasets": schema.DatasetEntry}
NOT_READS = ("dataclasses.py",)  # asdict, replace, __eq__ ... copy values without reading them


class KeyReads:
    """Records which fields of the config sections the code reads (attribute access on an instance).

    Copies made by the dataclass machinery (``to_dict`` -> ``asdict``, generated ``__eq__`` and
    ``__repr__``) and the validation in ``schema.build_section`` do not count.
    """

    def __init__(self, monkeypatch):
        self.read = set()
        for section, cls in SECTIONS.items():
            names = {f.name for f in dataclasses.fields(cls)}
            monkeypatch.setattr(cls, "__getattribute__", self._getter(section, names))

    def _getter(self, section, names):
        read = self.read

        def getattribute(obj, name):
            if name in names:
                code = sys._getframe(1).f_code
                if not (code.co_filename.startswith("<") or code.co_filename.endswith(NOT_READS)
                        or (code.co_name == "build_section" and code.co_filename.endswith("schema.py"))):
                    read.add(f"{section}.{name}")
            return object.__getattribute__(obj, name)
        return getattribute


def _scenario_vector_runs(tmp_path):
    """Training, prediction and evaluation of vector experiments, through each training option."""
    layout = write_vector_dataset(tmp_path / "vec")
    run_experiment(vector_experiment({"nsamples": "24", "with_metadata": True, "only_metadata": True},
                                     {"n_epochs": 2, "optimizer": "sgd", "nesterov": True, "decay": 1e-4}), ("emb",), layout, verbose=0)
    run(vector_experiment(training={"n_epochs": 2, "val_from_file": False, "restore_best": True}), ("emb",), layout,
        verbose=0)


def _narrow(values):
    """A CnnSection's values with every width cut to a few units (zeros, absent blocks, stay)."""
    for key, value in values.items():
        if key.startswith(("n_filters_", "n_dense")) or key == "num_filters":
            values[key] = min(value, 4)
        elif key == "rnn_units":
            values[key] = tuple(min(u, 4) for u in value)
    return values


def _scenario_architectures(tmp_path):
    """Every architecture built from its default config (narrowed), and architecture 1 with five blocks."""
    from tartarus.config import CnnSection
    from tartarus.config.families import PRETRAINED_IDS
    from tartarus.models import ARCHITECTURES, build_model, default_cnn
    for arch in ARCHITECTURES.values():
        # the released taggers need their weights (make pretrained); one of them reads their keys
        if arch.id in PRETRAINED_IDS and (arch.id != "MTT_vgg" or not weights_installed()):
            continue
        cnn = CnnSection(**_narrow(dataclasses.asdict(default_cnn(arch.id))))
        build_model(cnn, arch.example_shapes, 3)
    build_model(default_cnn("1", **{f"n_filters_{i}": 2 for i in range(1, 6)}), [(96, 96, 1)], 3)


def _scenario_multilabel_and_recommendation(tmp_path):
    """Multi-label evaluation (decision thresholds) and recommendation evaluation (protocols)."""
    from tartarus.evaluate import evaluate_recommendation
    layout = write_vector_dataset(tmp_path / "ml")
    run_experiment(vector_experiment({"evaluation": "multilabel"}, {"n_epochs": 1, "loss_func": "binary_crossentropy"},
                                     {"final_activation": "sigmoid"}), ("emb",), layout, verbose=0)
    rec = DataLayout(tmp_path / "rec")
    rng = np.random.default_rng(0)
    items = [f"i{j}" for j in range(8)]
    write_lines(rec.items_index("test", "R"), items)
    save_sparse(rec.eval_matrix("test", "R"), sp.csr_matrix((rng.random((8, 20)) > 0.6).astype(np.float32)))
    save_npy(rec.user_factors("als", 4, "R"), rng.normal(size=(20, 4)))
    save_npy(rec.prediction("model_1", "test"), rng.normal(size=(8, 4)))
    write_lines(rec.prediction_index("model_1", "test"), items)
    exp = experiment_from_dict("rec", {"dataset": {"dataset": "R", "fact": "als", "dim": 4, "evaluation": "recommendation"},
                                       "cnn": {"final_activation": "linear"}, "evaluating": {"map_k": 5}})
    evaluate_recommendation(rec, "model_1", "test", exp, write=False)


def _scenario_audio_and_text(tmp_path):
    """The dummy data through spectrograms (mel and CQT), patches, an audio model predicted on whole
    tracks, and the text features: the keys of a dataset entry and of predicting."""
    from tartarus.cli import main
    from tartarus.datasets import generate_dummy
    from tartarus.predict import predict
    root = tmp_path / "dummy"
    generate_dummy(root, n_items=15, n_users=20, clip_seconds=2.0)
    experiments = tmp_path / "entries"
    experiments.mkdir()
    (experiments / "datasets.toml").write_text(
        '[DUMMY]\naudio_folder = "audio"\naudio_ext = ["wav"]\nnum_process = 1\nnpatches = 2\nwindow = 1\n'
        'patch_mode = "even"\nseed = 1\nsequence_length = 20\nembedding_dim = 8\nw2v_epochs = 1\nd2v_dim = 4\n'
        'max_df = 1.0\nmin_df = 1\nmax_features = 50\n'
        '[DUMMY_CQT]\nbase = "DUMMY"\nindex_file = "index_audio_DUMMY.tsv"\nspectrogram_type = "cqt"\n'
        'cqt_bins = 24\nbins_per_octave = 12\nfmin = 65.4\ndb_ref = "max"\ntop_db = 80\n')
    where = ["--data-dir", str(root), "--experiments", str(experiments)]
    for command in (["spectrograms", "DUMMY"], ["spectrograms", "DUMMY_CQT"], ["patches", "DUMMY"],
                    ["text", "vsm", "DUMMY"], ["text", "w2v", "DUMMY"], ["text", "d2v", "DUMMY"]):
        assert main(command + where) in (0, None), command
    layout = DataLayout(root)
    exp = experiment_from_dict("dummy_tiny", {
        "dataset": {"dataset": "DUMMY", "fact": "class", "dim": 3, "npatches": 2, "window": 1},
        "training": {"n_epochs": 1, "n_minibatch": 8},
        "cnn": {"architecture": "1", "n_filters_1": 2, "n_filters_2": 2, "n_pool_1": [2, 1], "n_pool_2": [2, 1],
                "final_activation": "softmax"}})
    model_id = run_experiment(exp, (), layout, verbose=0).model_id
    predict(layout, model_id, ["test"], full_track=True)
    text_cnn = experiment_from_dict("dummy_w2v", {  # word sequences cut to cnn.sequence_length
        "dataset": {"dataset": "DUMMY", "fact": "class", "dim": 3},
        "training": {"n_epochs": 1, "n_minibatch": 8},
        "cnn": {"architecture": "4", "sequence_length": 10, "embedding_dim": 8, "num_filters": 2, "n_dense": 4, "final_activation": "softmax"}})
    run(text_cnn, ("w2v",), layout, verbose=0)


SCENARIOS = [_scenario_vector_runs, _scenario_architectures,
             _scenario_multilabel_and_recommendation, _scenario_audio_and_text]


def test_every_config_key_is_read(tmp_path, monkeypatch):
    """A key nothing reads fails here: read it (and add a scenario that reaches the code that does),
    or remove it from the schema and add it to schema.REMOVED_KEYS with what replaces it."""
    reads = KeyReads(monkeypatch)
    for scenario in SCENARIOS:
        scenario(tmp_path)
    keys = {f"{section}.{f.name}" for section, cls in SECTIONS.items() for f in dataclasses.fields(cls)}
    keys -= {"datasets.name", "datasets.base", "datasets.description"}  # bookkeeping, not settings
    if not weights_installed():  # only the released taggers read these, and they need their weights
        keys -= {"cnn.pretrained_layer", "cnn.trainable"}
    unread = sorted(keys - reads.read)
    assert not unread, f"config keys that no scenario reads: {', '.join(unread)}"
