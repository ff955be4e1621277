"""The experiment registry: named entries read from ``experiments/*.toml``.

Each file holds one family of entries. An entry names its ``base`` (another entry, or nothing for
the built-in defaults) and states only its differences; sections merge key by key. Dataset
entries (spectrogram and patch settings) live in ``experiments/datasets.toml``; a data root may add
its own in ``{root}/datasets.toml`` (same schema), whose entries replace the package's entries of the
same name, so that a new dataset needs no edit of the package.
"""

from __future__ import annotations

import ast
import copy
import os
import tomllib
from pathlib import Path

from ..errors import ConfigError
from ..layout import DataLayout
from .families import check_keys_read
from .schema import (EXPERIMENT_SCALARS, EXPERIMENT_SECTIONS, DatasetEntry, Experiment,
                     build_section)

EXPERIMENTS_ENV = "TARTARUS_EXPERIMENTS"
DATASETS_FILE = "datasets.toml"


def default_experiments_dir():
    """``$TARTARUS_EXPERIMENTS``, else ``./experiments`` if present, else the one beside the package."""
    env = os.environ.get(EXPERIMENTS_ENV)
    if env:
        return Path(env)
    if Path("experiments").is_dir():
        return Path("experiments")
    return Path(__file__).resolve().parents[3] / "experiments"


def parse_override(text):
    """``'training.n_epochs=3'`` -> ``(('training', 'n_epochs'), 3)``.

    The value is read as a Python literal (numbers, strings, lists, tuples, booleans); anything
    that is not a literal stays a plain string. Nothing is evaluated as code.
    """
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected SECTION.KEY=VALUE")
    key, raw = text.split("=", 1)
    parts = tuple(p.strip() for p in key.strip().split("."))
    if not all(parts) or len(parts) > 2:
        raise ConfigError(f"override {text!r}: expected SECTION.KEY=VALUE")
    raw = raw.strip()
    lowered = {"true": True, "false": False}
    if raw.lower() in lowered:
        return parts, lowered[raw.lower()]
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        value = raw
    if isinstance(value, tuple):
        value = list(value)
    return parts, value


def _deep_merge(base, diff):
    out = copy.deepcopy(base)
    for key, value in diff.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _read_toml(path):
    """``{name: entry table}`` of a TOML file; ConfigError naming the file if it is not valid
    (not UTF-8, not TOML, not readable)."""
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:  # tomllib decodes the whole file as UTF-8 first
        raise ConfigError(f"{path}: not valid TOML: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
                          f"{exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    for name, entry in doc.items():
        if not isinstance(entry, dict):
            raise ConfigError(f"{path}: top-level key {name!r} must be a table [{name}]")
    return doc


# What `tartarus spectrograms` on an undeclared dataset suggests: one TOML line, the defaults spelled out.
EXAMPLE_ENTRY = ('{name} = {{ audio_folder = "audio", audio_ext = ["mp3"], spectrogram_type = "mel", '
                 'resample_sr = 22050, n_fft = 2048, hop = 1024, n_mels = 96, npatches = 1, window = 15 }}')


class Registry:
    """All named experiments and datasets of one experiments folder, and of a data root.

    experiments_dir : the folder of experiment TOML files (default: :func:`default_experiments_dir`).
    data_root : a data root whose ``datasets.toml`` (if present) adds dataset entries; an entry there
        replaces the package's entry of the same name as a whole. None: the package's entries only.
    skip_unreadable : a TOML file that cannot be read (not UTF-8, not TOML) is a ConfigError naming
        it (default), or, when True, left out and its error kept in ``unreadable`` (``tartarus list``
        lists the rest and warns about each; a command that resolves entries refuses to start, since
        the file might hold the entry it asks for, or a second definition of it).
    """

    def __init__(self, experiments_dir=None, data_root=None, skip_unreadable=False):
        self.dir = Path(experiments_dir) if experiments_dir else default_experiments_dir()
        if not self.dir.is_dir():
            raise ConfigError(f"experiments folder not found: {self.dir} (set --experiments or ${EXPERIMENTS_ENV})")
        self.user_datasets_file = DataLayout(data_root).datasets_file() if data_root is not None else None
        self._experiments = {}  # name -> (raw dict, source file)
        self._datasets = {}
        self.unreadable = []  # ConfigErrors of the files left out (skip_unreadable)

        def read(path):
            try:
                return _read_toml(path)
            except ConfigError as exc:
                if not skip_unreadable:
                    raise
                self.unreadable.append(exc)
                return {}

        for path in sorted(self.dir.glob("*.toml")):
            target = self._datasets if path.name == DATASETS_FILE else self._experiments
            for name, entry in read(path).items():
                if name in self._experiments or name in self._datasets:
                    other = (self._experiments.get(name) or self._datasets.get(name))[1]
                    raise ConfigError(f"entry {name!r} is defined twice: in {other} and in {path}")
                target[name] = (entry, path)
        if self.user_datasets_file is not None and self.user_datasets_file.is_file():
            path = self.user_datasets_file
            for name, entry in read(path).items():
                if name in self._experiments:
                    raise ConfigError(f"{path}: dataset {name!r} has the name of the experiment in "
                                      f"{self._experiments[name][1]}: rename the dataset")
                self._datasets[name] = (entry, path)  # the data root's own entry wins

    # listing
    def experiment_names(self):
        return sorted(self._experiments)

    def dataset_names(self):
        return sorted(self._datasets)

    def description(self, name):
        entry = self._experiments.get(name) or self._datasets.get(name)
        return entry[0].get("description", "") if entry else ""

    def source(self, name):
        entry = self._experiments.get(name) or self._datasets.get(name)
        return entry[1] if entry else None

    # resolving
    def _resolved(self, name, table, kind):
        chain = []
        while name:
            if name not in table:
                known = ", ".join(sorted(table)) or "none"
                where = f" (base of {chain[-1]!r})" if chain else ""
                raise ConfigError(f"unknown {kind} {name!r}{where}; known: {known}")
            if name in chain:
                raise ConfigError(f"{kind} {chain[0]!r}: circular base chain {' -> '.join(chain + [name])}")
            chain.append(name)
            name = table[name][0].get("base", "")
            if not isinstance(name, str):
                raise ConfigError(f"{kind} {chain[-1]!r}.base: expected an entry name, got {name!r}")
        merged = {}
        for link in reversed(chain):
            merged = _deep_merge(merged, table[link][0])
        merged["base"] = table[chain[0]][0].get("base", "")
        return merged

    def raw_experiment(self, name):
        """The merged, unvalidated entry (for showing abstract bases that lack required values)."""
        return self._resolved(name, self._experiments, "experiment")

    def experiment(self, name, overrides=()):
        """The validated Experiment ``name``, with ``--set`` style overrides applied last."""
        raw = self._resolved(name, self._experiments, "experiment")
        for item in overrides:
            path, value = parse_override(item) if isinstance(item, str) else item
            if len(path) != 2 or path[0] not in EXPERIMENT_SECTIONS:
                raise ConfigError(f"experiment {name!r}: override {'.'.join(path)!r} must name "
                                  f"SECTION.KEY with SECTION one of {', '.join(EXPERIMENT_SECTIONS)}")
            raw.setdefault(path[0], {})[path[1]] = value
        return experiment_from_dict(name, raw)

    def dataset(self, name, undeclared="error"):
        """The validated DatasetEntry ``name``.

        undeclared : what a name with no entry gives: ``"error"`` (the default; for the commands that
            need audio settings) raises a ConfigError naming the file where the entry belongs, with an
            example; ``"defaults"`` gives ``DatasetEntry(name=name)``, every setting at its default
            (text features, interactions, factors, which read no audio setting).
        """
        if name not in self._datasets:
            if undeclared == "defaults":
                return DatasetEntry(name=name)
            raise self._undeclared(name)
        raw = self._resolved(name, self._datasets, "dataset")
        raw.pop("name", None)
        return build_section(DatasetEntry, {"name": name, **raw}, f"dataset {name!r}")


    def _undeclared(self, name):
        where = (self.user_datasets_file if self.user_datasets_file is not None
                 else f"the data root's {DATASETS_FILE}")
        known = ", ".join(sorted(self._datasets)) or "none"
        return ConfigError(f"dataset {name!r} has no entry (known: {known}), and audio commands need its "
                           f"spectrogram settings: add one to {where} (or to {self.dir / DATASETS_FILE}), "
                           f"e.g. the line: " + EXAMPLE_ENTRY.format(name=_toml_key(name)))


def _toml_key(name):
    """``name`` as a TOML key: bare when it can be, quoted otherwise."""
    bare = name and all(c.isalnum() and c.isascii() or c in "-_" for c in name)
    return name if bare else '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def experiment_from_dict(name, raw, saved=False):
    """Validate a plain dict (from TOML or a saved config.json) into an Experiment.

    A ``cnn`` key that ``raw`` states (not a default) and that the chosen architecture does not
    read is a ConfigError naming the architecture and the key (config.families).

    saved : ``raw`` is a trained model's saved config: keys removed since it was written (schema
        REMOVED_KEYS, keys that nothing read) are left out instead of refused, and the ``cnn``
        section may hold every key (a saved config states them all, read or not).
    """
    raw = dict(raw)
    raw.pop("name", None)
    unknown = sorted(set(raw) - set(EXPERIMENT_SECTIONS) - set(EXPERIMENT_SCALARS))
    if unknown:
        raise ConfigError(f"experiment {name!r}: unknown section {unknown[0]!r} "
                          f"(known: {', '.join(list(EXPERIMENT_SECTIONS) + list(EXPERIMENT_SCALARS))})")
    sections = {sec: build_section(cls, raw.get(sec, {}), f"experiment {name!r}: {sec}", drop_removed=saved)
                for sec, cls in EXPERIMENT_SECTIONS.items()}
    scalars = {}
    for key, tp in EXPERIMENT_SCALARS.items():
        value = raw.get(key, "")
        if not isinstance(value, tp):
            raise ConfigError(f"experiment {name!r}: {key}: expected a string, got {value!r}")
        scalars[key] = value
    if not saved:
        check_keys_read(sections["cnn"].architecture, set(raw.get("cnn", {})), f"experiment {name!r}")
    return Experiment(name=name, **sections, **scalars)
