"""Each architecture family owns its config: the keys it reads, and an error for a key it does not.

config/families.py declares, per family, the ``cnn`` keys its builder reads; an experiment that sets
(in its TOML entry, a base, or ``--set``) a key its architecture does not read is refused with an
error naming the architecture and the key. Saved model configs (config.json), which state every key,
still load. Builders receive the family config only, and ``import tartarus`` alone registers the
custom layers that saved models hold.
"""

import dataclasses
import inspect
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tartarus.config import Registry, experiment_from_dict
from tartarus.config.families import FAMILIES, FamilyConfig, check_keys_read, family_config
from tartarus.config.schema import CnnSection
from tartarus.errors import ConfigError
from tartarus.models import ARCHITECTURES, build_model, default_cnn

from .conftest import REPO

IDS = sorted(ARCHITECTURES, key=lambda i: (len(i), i))
ALL_KEYS = [f.name for f in dataclasses.fields(CnnSection)]
# a value of the right type for every key, so that only "not read" can be wrong
SAMPLE = {f.name: f.default for f in dataclasses.fields(CnnSection)}


def unread_key(arch_id):
    """The first CnnSection key that ``arch_id``'s family does not read."""
    return next(k for k in ALL_KEYS if k not in FAMILIES[arch_id].keys())


def raw_experiment(cnn):
    return {"dataset": {"dataset": "X", "dim": 3}, "cnn": cnn}


def test_every_architecture_has_a_family_and_its_defaults_are_read():
    assert set(FAMILIES) == set(ARCHITECTURES)
    for arch_id, arch in ARCHITECTURES.items():
        assert arch.config is FAMILIES[arch_id]
        assert set(FAMILIES[arch_id].keys()) <= set(ALL_KEYS), arch_id  # the TOML names, nothing new
        unread = set(arch.defaults) - set(FAMILIES[arch_id].keys())
        assert not unread, f"architecture {arch_id}: defaults set keys it does not read: {sorted(unread)}"


@pytest.mark.parametrize("arch_id", IDS)
def test_a_key_the_architecture_does_not_read_is_an_error_naming_both(arch_id):
    key = unread_key(arch_id)
    with pytest.raises(ConfigError) as err:
        experiment_from_dict("x", raw_experiment({"architecture": arch_id, key: SAMPLE[key]}))
    text = str(err.value)
    assert text.startswith(f"experiment 'x': cnn.{key} is not read by architecture {arch_id} "), text
    assert FAMILIES[arch_id].family in text and "it reads: final_activation" in text


@pytest.mark.parametrize("arch_id", IDS)
def test_every_key_the_family_reads_is_accepted(arch_id):
    cnn = {key: SAMPLE[key] for key in FAMILIES[arch_id].keys()}
    cnn["architecture"] = arch_id
    exp = experiment_from_dict("x", raw_experiment({k: list(v) if isinstance(v, tuple) else v for k, v in cnn.items()}))
    assert family_config(exp.cnn) == FAMILIES[arch_id].from_section(exp.cnn)


def test_defaults_are_not_set_keys():
    # CnnSection's defaults hold every key (n_filters_1 = 256 ...): stating only the architecture is fine
    for arch_id in IDS:
        exp = experiment_from_dict("x", raw_experiment({"architecture": arch_id}))
        assert exp.cnn.architecture == arch_id


def test_a_key_set_by_a_base_is_checked_against_the_child_architecture(tmp_path):
    (tmp_path / "e.toml").write_text(textwrap.dedent("""
        [audio]
        dataset = { dataset = "X", dim = 3 }
        cnn = { architecture = "1", n_filters_1 = 8, n_pool_1 = [2, 1], final_activation = "softmax" }

        [musicnn]
        base = "audio"
        cnn = { architecture = "61", n_filters_2 = 4 }
        """))
    reg = Registry(tmp_path)
    assert reg.experiment("audio").cnn.n_filters_1 == 8
    with pytest.raises(ConfigError, match=r"experiment 'musicnn': cnn\.n_pool_1 is not read by architecture 61 "
                                          r"\(musicnn tagger\)"):
        reg.experiment("musicnn")
    with pytest.raises(ConfigError, match=r"experiment 'audio': cnn\.rnn_units is not read by architecture 1 "):
        reg.experiment("audio", ["cnn.rnn_units=[8]"])  # an override is a set key too


def test_unknown_architecture_is_refused_when_the_experiment_loads():
    with pytest.raises(ConfigError, match=r"experiment 'x': cnn\.architecture: unknown id '99' \(known: 1, 2, 3"):
        experiment_from_dict("x", raw_experiment({"architecture": "99"}))
    with pytest.raises(ConfigError, match="unknown id '99'"):
        check_keys_read("99", [])


@pytest.mark.parametrize("arch_id", IDS)
def test_saved_configs_with_every_key_still_load(arch_id):
    # config.json holds the whole cnn section (Experiment.to_dict), read or not: read leniently
    exp = experiment_from_dict("x", raw_experiment({"architecture": arch_id}))
    saved = json.loads(json.dumps({**exp.to_dict(), "name": "x"}))
    assert set(saved["cnn"]) == set(ALL_KEYS)
    again = experiment_from_dict("x", saved, saved=True)
    assert again == exp
    with pytest.raises(ConfigError, match="is not read by architecture"):
        experiment_from_dict("x", saved)  # the same dict as a TOML entry states keys it does not read


@pytest.mark.parametrize("arch_id", IDS)
def test_family_config_round_trips_through_json_like_keras_get_config(arch_id):
    config = family_config(default_cnn(arch_id))
    assert isinstance(config, FamilyConfig) and config.architecture == arch_id
    plain = json.loads(json.dumps(config.get_config()))
    assert list(plain) == list(FAMILIES[arch_id].keys())
    assert FAMILIES[arch_id].from_config(plain) == config
    key = unread_key(arch_id)
    with pytest.raises(ConfigError, match=rf"cnn\.{key} is not read by architecture {arch_id} "):
        FAMILIES[arch_id].from_config({**plain, key: SAMPLE[key]})
    with pytest.raises(ConfigError, match="missing key 'final_activation'"):
        FAMILIES[arch_id].from_config({k: v for k, v in plain.items() if k != "final_activation"})


def test_conv_blocks_are_the_present_seed_keys():
    config = family_config(default_cnn("1", n_filters_1=8, n_filters_2=0, n_filters_3=4, n_kernel_3=(2, 1),
                                       n_pool_3=(3, 1)))
    assert [(b.index, b.filters, b.kernel, b.pool) for b in config.conv_blocks()] == [
        (1, 8, (4, 96), (4, 1)), (3, 4, (2, 1), (3, 1))]
    twelve = family_config(default_cnn("12"))  # 12 reads blocks 2..5 only: block 1 is the parallel front end
    assert [b.index for b in twelve.conv_blocks()] == [2, 3, 4]
    assert family_config(default_cnn("3", n_dense=0, n_dense_2=5)).hidden_units() == [(2, 5)]


def test_builders_take_the_family_config_and_named_parameters_only():
    for arch_id, arch in ARCHITECTURES.items():
        params = inspect.signature(arch.builder).parameters.values()
        assert not [p for p in params if p.kind is p.VAR_KEYWORD], f"architecture {arch_id}: **kwargs in builder"


def _narrowed(arch_id):
    """The default config of ``arch_id`` with layer widths cut to at most 4 (quick to build)."""
    values = dataclasses.asdict(default_cnn(arch_id))
    for key, value in values.items():
        if key.startswith(("n_filters_", "n_dense")) or key == "num_filters":
            values[key] = min(value, 4)
        elif key == "rnn_units":
            values[key] = tuple(min(u, 4) for u in value)
    return CnnSection(**values)


def test_every_key_a_family_declares_is_read_by_its_builder(monkeypatch):
    # the other half of "a key the architecture does not read is an error": a declared key is read.
    # Reads are attribute accesses on the family config, except the copies of (get|from)_config and
    # the dataclass machinery (__eq__, __repr__, asdict).
    read = {arch_id: set() for arch_id in ARCHITECTURES}
    copies = ("get_config", "from_config", "from_section", "__eq__", "__repr__", "__hash__")
    for cls in set(FAMILIES.values()):
        names = set(cls.keys())

        def getattribute(obj, name, names=names):
            if name in names:
                code = sys._getframe(1).f_code
                if not (code.co_name in copies or code.co_filename.endswith("dataclasses.py")):
                    read[object.__getattribute__(obj, "architecture")].add(name)
            return object.__getattribute__(obj, name)
        monkeypatch.setattr(cls, "__getattribute__", getattribute)
    for arch_id, arch in ARCHITECTURES.items():
        build_model(_narrowed(arch_id), arch.example_shapes, 3)
    unread = {arch_id: sorted(set(FAMILIES[arch_id].keys()) - keys) for arch_id, keys in read.items()}
    assert {arch_id: keys for arch_id, keys in unread.items() if keys} == {}


def test_a_family_config_builds_the_same_model_as_the_section():
    cnn = default_cnn("1", n_filters_1=4, n_filters_2=4, n_dense=6)
    a = build_model(cnn, [(20, 16, 1)], 3)
    b = build_model(family_config(cnn), [(20, 16, 1)], 3)
    assert [(layer.name, tuple(layer.output.shape)) for layer in a.layers] == \
        [(layer.name, tuple(layer.output.shape)) for layer in b.layers]
    assert a.count_params() == b.count_params()
    with pytest.raises(TypeError):  # a vector model takes no input statistics
        build_model(default_cnn("3"), [(5,)], 3, input_stats=(0.0, 1.0))


def test_every_experiment_of_the_package_loads():
    reg = Registry(REPO / "experiments")
    loaded = 0
    for name in reg.experiment_names():
        try:
            exp = reg.experiment(name)
        except ConfigError as exc:  # abstract bases lack a dataset; nothing else may fail
            assert "missing value" in str(exc), exc
            continue
        check_keys_read(exp.cnn.architecture, reg.raw_experiment(name).get("cnn", {}), name)
        loaded += 1
    assert loaded > 40


def test_import_tartarus_alone_registers_the_custom_layers(tmp_path):
    # a model holding Standardize and L2Normalize, saved here, loaded in a fresh process that imports
    # tartarus (not tartarus.models) and keras
    model = build_model(default_cnn("1", n_filters_1=2, n_filters_2=2, final_activation="linear"), [(12, 8, 1)], 3,
                        input_stats=(-1.0, 2.0))
    path = tmp_path / "model.keras"
    model.save(path)
    x = np.random.default_rng(0).normal(size=(2, 12, 8, 1)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.asarray(model.predict_on_batch(x)))
    script = textwrap.dedent(f"""
        import sys
        import tartarus, keras, numpy as np
        model = keras.saving.load_model({str(path)!r})
        kinds = sorted(type(layer).__name__ for layer in model.layers)
        out = np.asarray(model.predict_on_batch(np.load({str(tmp_path / 'x.npy')!r})))
        assert np.allclose(out, np.load({str(tmp_path / 'y.npy')!r}), atol=1e-6)
        print("LOADED", "Standardize" in kinds, "L2Normalize" in kinds)
        """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "LOADED True True" in done.stdout


def test_import_tartarus_does_not_import_keras():
    # the command line quiets the backend's start-up before anything imports Keras (tartarus.quiet)
    done = subprocess.run([sys.executable, "-c", "import sys, tartarus, tartarus.cli, tartarus.config; "
                           "print(sorted(m for m in ('keras', 'tensorflow') if m in sys.modules))"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
