import pytest

from tartarus.config import Registry, parse_override
from tartarus.errors import ConfigError


def write(tmp_path, text, name="family.toml"):
    (tmp_path / name).write_text(text)
    return Registry(tmp_path)


def test_repo_registry_entries_validate():
    reg = Registry()
    assert {"dummy_audio", "super_audio"} <= set(reg.experiment_names())
    assert {"DUMMY", "SUPER"} <= set(reg.dataset_names())
    e = reg.experiment("dummy_audio")
    assert (e.dataset.dataset, e.dataset.dim, e.dataset.npatches, e.dataset.window) == ("DUMMY", 3, 1, 15.0)
    # the seed's dummy_audio: batches of 3, binary cross-entropy on the softmax head, no dropout
    assert (e.training.n_epochs, e.training.n_minibatch) == (30, 3)
    assert e.training.loss_func == "binary_crossentropy" and e.cnn.dropout_factor == 0.0
    assert (e.cnn.architecture, e.cnn.n_filters_1, e.cnn.n_filters_2) == ("1", 64, 128)
    assert e.cnn.n_pool_2 == (2, 1) and e.cnn.n_kernel_1 == (4, 96)  # inherited from audio_cnn
    assert e.cnn.final_activation == "softmax"
    s = reg.dataset("SUPER")
    assert (s.spectrogram_type, s.cqt_bins, s.resample_sr, s.hop, s.npatches, s.window) == ("cqt", 96, 22050, 1024, 1, 15.0)


def test_inheritance_states_only_differences(tmp_path):
    reg = write(tmp_path, """
[a]
dataset = { dataset = "X", dim = 4 }
training = { n_epochs = 7, n_minibatch = 2 }
[b]
base = "a"
training = { n_epochs = 9 }
""")
    b = reg.experiment("b")
    assert b.training.n_epochs == 9 and b.training.n_minibatch == 2 and b.dataset.dim == 4


@pytest.mark.parametrize("text, needle", [
    ('[e]\ndataset = { dataset = "X", dim = 3 }\ntraining = { n_epoch = 3 }', "training: unknown key 'n_epoch' (did you mean 'n_epochs'?)"),
    ('[e]\ndataset = { dataset = "X", dim = "three" }', "experiment 'e': dataset.dim: expected an integer, got 'three'"),
    ('[e]\ndataset = { dataset = "X" }', "experiment 'e': dataset.dim: missing value"),
    ('[e]\ndataset = { dataset = "X", dim = 3 }\ncnn = { n_pool_1 = [2] }', "cnn.n_pool_1: expected 2 values"),
    ('[e]\ndataset = { dataset = "X", dim = 3 }\ntraining = { loss_func = "hinge" }', "training.loss_func: 'hinge' is not one of"),
    ('[e]\ndataset = { dataset = "X", dim = 3 }\ntraning = { n_epochs = 3 }', "experiment 'e': unknown section 'traning'"),
    ('[e]\nbase = "nothere"\ndataset = { dataset = "X", dim = 3 }', "unknown experiment 'nothere' (base of 'e')"),
    ('[e]\nbase = "f"\n[f]\nbase = "e"', "circular base chain"),
    ('[e]\ndataset = { dataset = "X", dim = 3 }\ntraining = { early_stopping = 1 }', "training.early_stopping: expected true or false"),
])
def test_config_errors_name_experiment_and_key(tmp_path, text, needle):
    reg = write(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        reg.experiment("e")
    assert needle in str(exc.value)


def test_dataset_entry_errors_name_the_key(tmp_path):
    reg = write(tmp_path, '[D]\nspectrogram_type = "wavelet"\n', name="datasets.toml")
    with pytest.raises(ConfigError, match=r"dataset 'D'.spectrogram_type: 'wavelet' is not one of"):
        reg.dataset("D")


def test_bad_toml_names_the_file(tmp_path):
    (tmp_path / "broken.toml").write_text("[e\n")
    with pytest.raises(ConfigError, match="broken.toml: not valid TOML"):
        Registry(tmp_path)


def test_duplicate_names_across_files(tmp_path):
    (tmp_path / "a.toml").write_text('[e]\ndataset = { dataset = "X", dim = 3 }\n')
    (tmp_path / "b.toml").write_text('[e]\ndataset = { dataset = "Y", dim = 3 }\n')
    with pytest.raises(ConfigError, match="defined twice"):
        Registry(tmp_path)


@pytest.mark.parametrize("text, expected", [
    ("training.n_epochs=3", (("training", "n_epochs"), 3)),
    ("training.learning_rate=1e-4", (("training", "learning_rate"), 1e-4)),
    ("cnn.n_pool_2=(2, 1)", (("cnn", "n_pool_2"), [2, 1])),
    ("cnn.n_kernel_1=[4,96]", (("cnn", "n_kernel_1"), [4, 96])),
    ("training.optimizer=sgd", (("training", "optimizer"), "sgd")),
    ("training.optimizer='sgd'", (("training", "optimizer"), "sgd")),
    ("training.early_stopping=false", (("training", "early_stopping"), False)),
    ("training.early_stopping=True", (("training", "early_stopping"), True)),
    # code is never run: it stays a string (and then fails validation as one)
    ("training.optimizer=__import__('os').system('echo hi')", (("training", "optimizer"), "__import__('os').system('echo hi')")),
])
def test_override_parsing(text, expected):
    assert parse_override(text) == expected


def test_overrides_are_validated(tmp_path):
    reg = write(tmp_path, '[e]\ndataset = { dataset = "X", dim = 3 }\n')
    assert reg.experiment("e", ["training.n_epochs=3", "cnn.n_pool_2=(2,1)"]).cnn.n_pool_2 == (2, 1)
    with pytest.raises(ConfigError, match="training.n_epochs: expected an integer, got 'many'"):
        reg.experiment("e", ["training.n_epochs=many"])
    with pytest.raises(ConfigError, match="training: unknown key 'n_epoch'"):
        reg.experiment("e", ["training.n_epoch=3"])
    with pytest.raises(ConfigError, match="expected SECTION.KEY=VALUE"):
        reg.experiment("e", ["n_epochs"])
    with pytest.raises(ConfigError, match="must name SECTION.KEY"):
        reg.experiment("e", ["n_epochs=3"])
    with pytest.raises(ConfigError, match="training.optimizer: .* is not one of"):
        reg.experiment("e", ["training.optimizer=__import__('os').system('echo hi')"])


def test_map_k_is_one_constant():
    # MAP@k's cut-off was 10 in some functions and 500 in others: one default now, the config's
    import inspect
    from tartarus import evaluate, metrics
    from tartarus.config.schema import MAP_K, EvaluatingSection
    assert EvaluatingSection().map_k == MAP_K == 500
    for func in (metrics.average_precision_at_k, metrics.ap_at_k_rows, metrics.map_at_k, metrics.ranking_reports,
                 metrics.ranking_report, evaluate.evaluate_scores):
        assert inspect.signature(func).parameters["k"].default == MAP_K, func.__name__
