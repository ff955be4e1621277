"""Which ``cnn`` keys each architecture family reads: one small typed config per family.

The TOML interface stays the seed's flat ``cnn`` section (``cnn.n_filters_1``, ``n_kernel_1``,
``n_pool_1``, ``n_dense``, ``dropout_factor`` ...), parsed and range-checked as
:class:`~tartarus.config.schema.CnnSection`. A family's config holds only the keys its builder
reads (its fields are those keys, so the TOML names and the config names are one), and is what the
builder receives (``models.build_model``): a builder cannot read a key its family does not declare.

A key that an experiment sets (in its TOML entry, a base, or a ``--set`` override) and that its
architecture does not read is a ConfigError naming the architecture and the key
(:func:`check_keys_read`), so that a setting never silently does nothing.

Configs serialise like Keras objects: ``get_config()`` gives a plain dict (JSON-ready),
``from_config(dict)`` makes the config back and refuses a key the family does not read.

This module imports no Keras: the registry checks experiments with it, and ``tartarus list``
stays quick.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import ClassVar

from ..errors import ConfigError

N_BLOCKS = 5  # conv blocks the seed's keys can describe: n_filters_1 .. n_filters_5


@dataclass(frozen=True)
class ConvBlock:
    """One present convolution block: its index ``i`` (the ``_i`` of its keys and layer names),
    ``filters`` (> 0), ``kernel`` and ``pool`` as ``(frames, bins)``."""
    index: int
    filters: int
    kernel: tuple
    pool: tuple


@dataclass(frozen=True)
class FamilyConfig:
    """The keys every family reads: ``architecture`` (the id) and ``final_activation`` (the head)."""
    architecture: str
    final_activation: str

    family: ClassVar[str] = ""  # a few words naming the family, for messages

    @classmethod
    def keys(cls):
        """The ``cnn`` keys this family reads, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_section(cls, section):
        """The family config of a parsed ``CnnSection``: the family's keys, read from it one by one
        (the others are left unread)."""
        return cls(**{key: getattr(section, key) for key in cls.keys()})

    def get_config(self):
        """A plain dict of the keys this family reads (tuples as lists, as JSON writes them)."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_config(cls, config):
        """The config from :meth:`get_config`'s dict; ConfigError on a key the family does not read,
        or on one it reads that is missing."""
        config = dict(config)
        arch = str(config.get("architecture", "?"))
        unread = sorted(set(config) - set(cls.keys()))
        if unread:
            raise unread_key_error(arch, cls, unread[0])
        missing = [key for key in cls.keys() if key not in config]
        if missing:
            raise ConfigError(f"cnn config of architecture {arch}: missing key {missing[0]!r}")
        hints = typing.get_type_hints(cls)
        return cls(**{key: _tuples(value) if typing.get_origin(hints[key]) is tuple else value
                      for key, value in config.items()})


def _plain(value):
    return [_plain(v) for v in value] if isinstance(value, tuple) else value


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


# --------------------------------------------------------------------------- shared key groups
@dataclass(frozen=True)
class _ConvKeys:
    """Blocks 1..5: ``n_filters_i`` (0 = block absent), ``n_kernel_i``, ``n_pool_i`` (frames, bins)."""
    n_filters_1: int
    n_filters_2: int
    n_filters_3: int
    n_filters_4: int
    n_filters_5: int
    n_kernel_1: tuple[int, int]
    n_kernel_2: tuple[int, int]
    n_kernel_3: tuple[int, int]
    n_kernel_4: tuple[int, int]
    n_kernel_5: tuple[int, int]
    n_pool_1: tuple[int, int]
    n_pool_2: tuple[int, int]
    n_pool_3: tuple[int, int]
    n_pool_4: tuple[int, int]
    n_pool_5: tuple[int, int]

    def conv_blocks(self, first=1):
        """The present blocks from ``first`` to 5 (``n_filters_i`` > 0), in order."""
        filters = (self.n_filters_1, self.n_filters_2, self.n_filters_3, self.n_filters_4, self.n_filters_5)
        kernels = (self.n_kernel_1, self.n_kernel_2, self.n_kernel_3, self.n_kernel_4, self.n_kernel_5)
        pools = (self.n_pool_1, self.n_pool_2, self.n_pool_3, self.n_pool_4, self.n_pool_5)
        return tuple(ConvBlock(i, f, tuple(k), tuple(p))
                     for i, (f, k, p) in enumerate(zip(filters, kernels, pools), 1) if i >= first and f > 0)


@dataclass(frozen=True)
class _HiddenDense:
    """Up to two hidden dense layers: ``n_dense``, ``n_dense_2`` units (0 = no such layer)."""
    n_dense: int
    n_dense_2: int

    def hidden_units(self):
        """[(i, units)] of the hidden layers present, i = 1 (``n_dense``) and 2 (``n_dense_2``)."""
        return [(i, units) for i, units in enumerate((self.n_dense, self.n_dense_2), 1) if units > 0]


# ------------------------------------------------------------------------------------ families
@dataclass(frozen=True)
class AudioCnnConfig(_HiddenDense, _ConvKeys, FamilyConfig):
    """Architecture 1: the seed's audio CNN (models/audio_cnn.py)."""
    dropout_factor: float
    activation: str
    batch_norm: bool
    init: str
    family: ClassVar[str] = "audio CNN"


@dataclass(frozen=True)
class AudioMetadataConfig(_ConvKeys, FamilyConfig):
    """Architecture 2: graph-API conv blocks fused with a metadata vector (``n_dense``: its projection)."""
    n_dense: int
    dropout_factor: float
    activation: str
    init: str
    family: ClassVar[str] = "audio CNN + metadata"


@dataclass(frozen=True)
class GraphCnnConfig(_ConvKeys, FamilyConfig):
    """Architecture 11: graph-API conv blocks and the head, no hidden dense layer."""
    dropout_factor: float
    activation: str
    init: str
    family: ClassVar[str] = "audio CNN, graph API"


@dataclass(frozen=True)
class ParallelCnnConfig(_HiddenDense, FamilyConfig):
    """Architecture 12: six fixed parallel convolutions pooled by ``n_pool_1``, then blocks 2..5.

    ``n_filters_1`` and ``n_kernel_1`` are not read: the parallel filters are the seed's own.
    """
    n_pool_1: tuple[int, int]
    n_filters_2: int
    n_filters_3: int
    n_filters_4: int
    n_filters_5: int
    n_kernel_2: tuple[int, int]
    n_kernel_3: tuple[int, int]
    n_kernel_4: tuple[int, int]
    n_kernel_5: tuple[int, int]
    n_pool_2: tuple[int, int]
    n_pool_3: tuple[int, int]
    n_pool_4: tuple[int, int]
    n_pool_5: tuple[int, int]
    dropout_factor: float
    activation: str
    batch_norm: bool
    init: str
    family: ClassVar[str] = "parallel-convolution CNN"

    def conv_blocks(self, first=2):
        """The present blocks 2..5 (``n_filters_i`` > 0), as :meth:`_ConvKeys.conv_blocks`."""
        rows = ((2, self.n_filters_2, self.n_kernel_2, self.n_pool_2), (3, self.n_filters_3, self.n_kernel_3, self.n_pool_3),
                (4, self.n_filters_4, self.n_kernel_4, self.n_pool_4), (5, self.n_filters_5, self.n_kernel_5, self.n_pool_5))
        return tuple(ConvBlock(i, f, tuple(k), tuple(p)) for i, f, k, p in rows if i >= first and f > 0)


@dataclass(frozen=True)
class CrnnConfig(_ConvKeys, FamilyConfig):
    """Architecture 5: Choi's CRNN (batch norm always on; ``rnn_units`` () = (32, 32) GRUs)."""
    dropout_factor: float
    activation: str
    rnn_units: tuple[int, ...]
    rnn_dropout: float
    family: ClassVar[str] = "CRNN"


@dataclass(frozen=True)
class VectorMlpConfig(_HiddenDense, FamilyConfig):
    """Architectures 3 (dense MLP) and 6 (relu/tanh/sigmoid branches) over one vector input."""
    dropout_factor: float
    init: str
    family: ClassVar[str] = "dense MLP over vectors"


@dataclass(frozen=True)
class FusionConfig(FamilyConfig):
    """Architectures 31 to 34: fusion of several vector inputs (``n_dense``: the hidden width)."""
    n_dense: int
    dropout_factor: float
    init: str
    family: ClassVar[str] = "fusion of vectors"


@dataclass(frozen=True)
class TextCnnConfig(FamilyConfig):
    """Architecture 4: Kim's text CNN over word embeddings."""
    sequence_length: int
    embedding_dim: int
    vocab_size: int
    embedding_trainable: bool
    filter_sizes: tuple[int, ...]
    num_filters: int
    dropout_prob: tuple[float, float]
    n_dense: int
    init: str
    family: ClassVar[str] = "text CNN"


@dataclass(frozen=True)
class TextLstmConfig(FamilyConfig):
    """Architecture 41: the seed's text LSTM (``rnn_units`` () = one 2048-unit LSTM)."""
    sequence_length: int
    embedding_dim: int
    vocab_size: int
    embedding_trainable: bool
    rnn_units: tuple[int, ...]
    init: str
    family: ClassVar[str] = "text LSTM"


@dataclass(frozen=True)
class ShuflConfig(_HiddenDense, _ConvKeys, FamilyConfig):
    """Architecture 51: 1-D convolutions over time (only ``n_kernel_i[0]`` and ``n_pool_i[0]`` count)."""
    dropout_factor: float
    activation: str
    batch_norm: bool
    dense_activations: tuple[str, ...]
    dropout_before_dense: bool
    family: ClassVar[str] = "shufl CNN"


@dataclass(frozen=True)
class MusicnnConfig(FamilyConfig):
    """Architecture 61: musicnn (timbral ``n_filters_1``, temporal ``n_filters_2``, mid end ``n_filters_3``)."""
    n_filters_1: int
    n_filters_2: int
    n_filters_3: int
    n_kernel_1: tuple[int, int]
    n_kernel_2: tuple[int, int]
    n_kernel_3: tuple[int, int]
    n_dense: int
    dropout_factor: float
    activation: str
    family: ClassVar[str] = "musicnn tagger"


@dataclass(frozen=True)
class ShortResConfig(FamilyConfig):
    """Architecture 62: the short-chunk ResNet (``n_filters_1``: the base width)."""
    n_filters_1: int
    n_dense: int
    dropout_factor: float
    activation: str
    family: ClassVar[str] = "short-chunk ResNet tagger"


@dataclass(frozen=True)
class PretrainedConfig(FamilyConfig):
    """The pretrained taggers under a new head (models/transfer.py): ``MTT_musicnn``, ``MSD_musicnn``,
    ``MTT_vgg``, ``MSD_vgg``.

    ``pretrained_layer``: where the released graph is cut ("" = its default, ``penultimate`` for
    musicnn, ``pool5`` for VGG); ``trainable``: "head" (the pretrained layers frozen) or "all"
    (fine-tuning; batch norm stays frozen); ``n_dense``: a hidden Dense layer of the head (0 = none);
    ``dropout_factor``: dropout before each Dense layer of the head.
    """
    pretrained_layer: str
    trainable: str
    n_dense: int
    dropout_factor: float
    family: ClassVar[str] = "pretrained tagger under a new head"


PRETRAINED_IDS = ("MTT_musicnn", "MSD_musicnn", "MTT_vgg", "MSD_vgg")  # = tartarus.pretrained.PRETRAINED_NAMES (tested)

# architecture id -> its family's config; models.ARCHITECTURES has the same ids (tested)
FAMILIES = {
    "1": AudioCnnConfig, "2": AudioMetadataConfig, "3": VectorMlpConfig, "4": TextCnnConfig,
    "5": CrnnConfig, "6": VectorMlpConfig, "11": GraphCnnConfig, "12": ParallelCnnConfig,
    "31": FusionConfig, "32": FusionConfig, "33": FusionConfig, "34": FusionConfig,
    "41": TextLstmConfig, "51": ShuflConfig, "61": MusicnnConfig, "62": ShortResConfig,
    **{arch_id: PretrainedConfig for arch_id in PRETRAINED_IDS},
}


def _sort_key(arch_id):
    return (0, int(arch_id)) if arch_id.isdigit() else (1, arch_id)


def family_of(arch_id, where=""):
    """The config class of architecture ``arch_id``; ConfigError naming the known ids otherwise
    (prefixed with ``where``, e.g. ``experiment 'x'``, when given)."""
    arch_id = str(arch_id)
    if arch_id not in FAMILIES:
        raise ConfigError(f"{where}: " * bool(where) + f"cnn.architecture: unknown id {arch_id!r} "
                          f"(known: {', '.join(sorted(FAMILIES, key=_sort_key))})")
    return FAMILIES[arch_id]


def family_config(cnn):
    """The family config of ``cnn`` (a CnnSection, or already a family config, returned as is)."""
    if isinstance(cnn, FamilyConfig):
        return cnn
    return family_of(cnn.architecture).from_section(cnn)


def unread_key_error(arch_id, cls, key, where=""):
    """The ConfigError for ``cnn.KEY`` set while architecture ``arch_id`` (family ``cls``) does not read it."""
    reads = ", ".join(k for k in cls.keys() if k != "architecture")
    prefix = f"{where}: " if where else ""
    return ConfigError(f"{prefix}cnn.{key} is not read by architecture {arch_id} ({cls.family}); leave it out "
                       f"(it reads: {reads})")


def check_keys_read(arch_id, keys, where=""):
    """Raise ConfigError unless architecture ``arch_id`` reads every ``cnn`` key in ``keys``.

    keys : the keys an experiment sets (its TOML entry, its bases, ``--set``), not the defaults.
    where : the message's prefix, e.g. ``experiment 'x'``.
    """
    cls = family_of(arch_id, where)
    unread = [k for k in keys if k not in cls.keys()]
    if unread:
        raise unread_key_error(str(arch_id), cls, sorted(unread)[0], where)
