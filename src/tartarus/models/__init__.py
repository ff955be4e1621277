"""Model builders, one per architecture family, and the table ``architecture id -> builder``.

Every builder takes ``(config, input_shapes, n_out)``, where ``config`` is its family's config
(``config.families``: only the ``cnn`` keys the family reads), plus the named inputs it needs
(``input_stats`` for patches, ``embedding`` for word sequences), and returns a ``keras.Model`` built
from ``keras.layers`` and ``keras.ops`` only, so it runs on TensorFlow, JAX and PyTorch.
:func:`build_model` is the one entry point: it turns an experiment's ``cnn`` section into the
family config and calls the builder.

Modules, by what they hold: ``audio_cnn`` (the seed's audio CNNs 1, 2, 11, 12), ``recurrent`` (CRNN 5,
text LSTM 41), ``text_cnn`` (4), ``dense`` (vector MLPs 3, 6), ``fusion`` (31 to 34), ``shufl`` (51),
``taggers`` (musicnn 61, short-chunk ResNet 62), ``transfer`` (the released musicnn and VGG
taggers, ``MTT_musicnn`` ..., under a new head; their graphs in ``pretrained_nets``); ``blocks`` holds
what they share (naming, input checks, the head), ``layers`` the custom layers, ``catalog`` the
table ``tartarus architectures`` prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import keras

from ..config.families import FAMILIES, family_config, family_of
from ..errors import ConfigError
from .audio_cnn import build_audio_cnn, build_audio_graph, build_audio_metadata, build_parallel_cnn
from .dense import build_branches, build_dense
from .fusion import build_bn_fusion, build_l2_fusion, l2_fusion_builder
from .layers import L2Normalize, Standardize
from .recurrent import build_crnn, build_text_lstm
from .shufl import build_shufl_cnn
from .taggers import build_musicnn, build_short_chunk_resnet
from .text_cnn import build_text_cnn
from .transfer import build_transfer


@dataclass(frozen=True)
class Architecture:
    id: str
    name: str
    input_kind: str  # "patches", "vectors", "sequences", "several"
    builder: Callable
    n_inputs: int = 1
    # `-l INDEX` is the seed's model.layers[INDEX] (see indexable_layers):
    # the seed's functional (non-Sequential) models counted their input layers in `-l` indices
    index_counts_inputs: bool = False
    # the seed's output Dense held the final activation: our `logits` has no index, `output` has it
    head_activation_inside: bool = False
    # name prefixes of layers the seed held in one nested sub-model, counted as one layer: the
    # last of them (the sub-model's output) keeps an index, the others have none
    seed_subgraph: tuple = ()
    # the architecture's default config: CnnSection values over the schema's defaults
    defaults: dict = field(default_factory=dict)
    # small input shapes (no batch axis) for `tartarus architectures` and the smoke tests
    example_shapes: tuple = ()

    @property
    def config(self):
        """The family config class: the ``cnn`` keys this architecture reads (config.families)."""
        return FAMILIES[self.id]


_AUDIO_EXAMPLE = ((96, 96, 1),)  # patches: frames, bins, channels
_MUSICNN_EXAMPLE = ((187, 96, 1),)  # musicnn's input: 3 s at 16 kHz, hop 256, 96 mel bands
_VECTOR_EXAMPLE = ((300,),)

ARCHITECTURES = {
    "1": Architecture("1", "audio CNN (seed)", "patches", build_audio_cnn,
                      defaults={"final_activation": "softmax"}, example_shapes=_AUDIO_EXAMPLE),
    "3": Architecture("3", "dense MLP over vectors (text VSM)", "vectors", build_dense, index_counts_inputs=True,
                      head_activation_inside=True,
                      defaults={"n_dense": 256, "n_dense_2": 128, "final_activation": "softmax"},
                      example_shapes=_VECTOR_EXAMPLE),
    "4": Architecture("4", "text CNN over word embeddings", "sequences", build_text_cnn,
                      seed_subgraph=("conv_", "pool_", "concat"),
                      defaults={"sequence_length": 100, "embedding_dim": 32, "vocab_size": 500, "num_filters": 16,
                                "n_dense": 32, "final_activation": "softmax"},
                      example_shapes=((100,),)),
    "6": Architecture("6", "relu, tanh and sigmoid dense branches over vectors", "vectors", build_branches,
                      index_counts_inputs=True, head_activation_inside=True,
                      defaults={"n_dense": 2048, "n_dense_2": 1024, "dropout_factor": 0.5,
                                "final_activation": "sigmoid"},
                      example_shapes=_VECTOR_EXAMPLE),
    "31": Architecture("31", "fusion of 2 inputs, batch-normalised dense branches", "several", build_bn_fusion,
                       n_inputs=2, index_counts_inputs=True, head_activation_inside=True,
                       defaults={"n_dense": 64, "final_activation": "softmax"}, example_shapes=((64,), (32,))),
    "32": Architecture("32", "fusion of 2 L2-normalised inputs", "several", l2_fusion_builder("32"),
                       n_inputs=2, index_counts_inputs=True, head_activation_inside=True,
                       defaults={"n_dense": 64, "final_activation": "softmax"}, example_shapes=((64,), (32,))),
    "33": Architecture("33", "fusion of 3 L2-normalised inputs", "several", l2_fusion_builder("33"),
                       n_inputs=3, index_counts_inputs=True, head_activation_inside=True,
                       defaults={"n_dense": 64, "final_activation": "softmax"},
                       example_shapes=((64,), (32,), (16,))),
    "34": Architecture("34", "fusion of 4 L2-normalised inputs", "several", l2_fusion_builder("34"),
                       n_inputs=4, index_counts_inputs=True, head_activation_inside=True,
                       defaults={"n_dense": 64, "final_activation": "softmax"},
                       example_shapes=((64,), (32,), (16,), (8,))),
    "51": Architecture("51", "shufl CNN (Dieleman and Schrauwen 2014 style)", "patches", build_shufl_cnn,
                       defaults={"n_filters_1": 256, "n_filters_2": 256, "n_filters_3": 512, "n_filters_4": 512,
                                 "n_kernel_1": (4, 1), "n_kernel_2": (4, 1), "n_kernel_3": (4, 1),
                                 "n_kernel_4": (4, 1), "n_pool_1": (4, 1), "n_pool_2": (2, 1), "n_pool_3": (2, 1),
                                 "n_pool_4": (1, 1), "n_dense": 2048, "n_dense_2": 2048, "final_activation": "linear"},
                       example_shapes=((128, 64, 1),)),
    "61": Architecture("61", "musicnn tagger (Pons and Serra 2019)", "patches", build_musicnn,
                       defaults={"n_filters_1": 16, "n_filters_2": 8, "n_filters_3": 32, "n_kernel_1": (7, 1),
                                 "n_kernel_2": (32, 1), "n_kernel_3": (7, 1), "n_dense": 64,
                                 "dropout_factor": 0.5, "final_activation": "sigmoid"},
                       example_shapes=((96, 96, 1),)),
    "62": Architecture("62", "short-chunk ResNet tagger (Won et al. 2020)", "patches", build_short_chunk_resnet,
                       defaults={"n_filters_1": 16, "n_dense": 64, "dropout_factor": 0.5, "final_activation": "sigmoid"},
                       example_shapes=((96, 96, 1),)),
    "2": Architecture("2", "audio CNN fused with a metadata vector (seed)", "patches+vectors", build_audio_metadata,
                      n_inputs=2, index_counts_inputs=True, head_activation_inside=True,
                      defaults={"n_filters_1": 1024, "n_filters_2": 1024, "n_filters_3": 2048, "n_filters_4": 2048,
                                "n_kernel_4": (1, 1), "n_pool_3": (1, 1), "n_pool_4": (1, 1), "n_dense": 2048,
                                "final_activation": "linear"},
                      example_shapes=((96, 96, 1), (64,))),
    "5": Architecture("5", "CRNN: conv blocks (BN, ELU), two GRUs (Choi et al.)", "patches",
                      build_crnn, index_counts_inputs=True,
                      defaults={"n_filters_1": 64, "n_filters_2": 128, "n_filters_3": 128, "n_filters_4": 128,
                                "n_kernel_1": (3, 3), "n_kernel_2": (3, 3), "n_kernel_3": (3, 3), "n_kernel_4": (3, 3),
                                "n_pool_1": (2, 2), "n_pool_2": (3, 3), "n_pool_3": (4, 4), "n_pool_4": (4, 4),
                                "dropout_factor": 0.1, "activation": "elu", "rnn_units": (32, 32), "rnn_dropout": 0.3,
                                "final_activation": "sigmoid"},
                      example_shapes=((250, 96, 1),)),
    "11": Architecture("11", "audio CNN, graph API, named flat layer (seed)", "patches", build_audio_graph,
                       index_counts_inputs=True, head_activation_inside=True,
                       defaults={"n_filters_1": 1024, "n_filters_2": 1024, "n_filters_3": 2048, "n_filters_4": 2048,
                                 "n_kernel_4": (1, 1), "n_pool_3": (1, 1), "n_pool_4": (1, 1),
                                 "final_activation": "linear"},
                       example_shapes=((96, 96, 1),)),
    "12": Architecture("12", "six parallel convolutions, then CNN blocks (seed)", "patches", build_parallel_cnn,
                       seed_subgraph=("branch_", "concat"),
                       defaults={"n_filters_2": 1024, "n_filters_3": 2048, "n_filters_4": 2048, "n_kernel_4": (1, 1),
                                 "n_pool_3": (1, 1), "n_pool_4": (1, 1), "final_activation": "softmax"},
                       example_shapes=((96, 96, 1),)),
    "41": Architecture("41", "text LSTM over word embeddings (seed)", "sequences", build_text_lstm,
                       defaults={"sequence_length": 500, "embedding_dim": 300, "vocab_size": 500, "rnn_units": (2048,),
                                 "final_activation": "linear"},
                       example_shapes=((100,),)),
    # the released musicnn taggers and VGG baselines (Pons and Serra 2019) under a new head (models/transfer.py;
    # weights: make pretrained); input: a dataset entry with log_scale = "musicnn" (DUMMY_musicnn, SUPER_musicnn)
    **{name: Architecture(name, f"{what} pretrained on {data} + a new head", "patches", build_transfer,
                          defaults={"final_activation": "softmax"}, example_shapes=_MUSICNN_EXAMPLE)
       for name, what, data in (("MTT_musicnn", "musicnn", "MagnaTagATune"), ("MSD_musicnn", "musicnn", "MSD"),
                                ("MTT_vgg", "VGG", "MagnaTagATune"), ("MSD_vgg", "VGG", "MSD"))},
}


def default_cnn(arch_id, **overrides):
    """The CnnSection of an architecture's default config (its ``defaults``), with ``overrides``."""
    from ..config.schema import CnnSection
    arch = get_architecture(arch_id)
    return CnnSection(**{**arch.defaults, **overrides, "architecture": arch.id})


def get_architecture(arch_id):
    """The Architecture of ``arch_id``; ConfigError naming the known ids otherwise."""
    family_of(arch_id)  # the unknown-id error, spelled in one place
    return ARCHITECTURES[str(arch_id)]


def build_model(cnn, input_shapes, n_out, input_stats=None, embedding=None):
    """Build the model of ``cnn.architecture``.

    cnn : the experiment's CnnSection, or a family config (``config.families``); the builder gets
        the family config, so it reads only the keys its family declares.
    input_shapes : one shape (without the batch axis) per input, in the order of the experiment's
        inputs (a single shape for a single input); n_out : output size.
    input_stats : (mean, std) of the training patches, for architectures over patches (default 0, 1).
    embedding : (vocab, embedding_dim) word2vec matrix, for architectures over word sequences.
    """
    if input_shapes and not isinstance(input_shapes[0], (list, tuple)):
        input_shapes = [input_shapes]  # a single shape
    config = family_config(cnn)
    named = {key: value for key, value in (("input_stats", input_stats), ("embedding", embedding))
             if value is not None}
    return get_architecture(config.architecture).builder(config, [tuple(s) for s in input_shapes], n_out, **named)


SKIPPED_FOR_INDEX = (keras.layers.InputLayer, Standardize)


def architecture_of(model):
    """The Architecture a built or loaded model was made by (from its name), or None."""
    prefix = "tartarus_arch_"
    return ARCHITECTURES.get(model.name[len(prefix):]) if model.name.startswith(prefix) else None


def indexable_layers(model):
    """The layers that ``-l INDEX`` counts: the seed's ``model.layers``, one of ours per seed layer.

    Input scaling is never counted (the seed scaled its patches on disk). Input layers are counted
    only for the architectures whose seed models were functional (Keras listed their inputs among
    the layers; its Sequential models did not). Where the seed's output Dense held the activation
    (``head_activation_inside``), ``logits`` is not counted and ``output`` takes its index. Layers
    the seed held in a nested sub-model (``seed_subgraph``) count as one: the sub-model's output.
    For architecture 4 with a frozen embedding (the seed's CNN-static, fed embedded text) the
    embedding is not counted. Every layer keeps working by name (see :func:`resolve_layer`).
    """
    arch = architecture_of(model)
    skip = (Standardize,) if arch is not None and arch.index_counts_inputs else SKIPPED_FOR_INDEX
    layers = [layer for layer in model.layers if not isinstance(layer, skip)]
    if arch is None:
        return layers
    if arch.head_activation_inside:
        layers = [layer for layer in layers if layer.name != "logits"]
    if arch.seed_subgraph:
        inner = [layer for layer in layers if layer.name.startswith(arch.seed_subgraph)]
        layers = [layer for layer in layers if layer not in inner[:-1]]  # the sub-model's output stays
    if arch.id == "4" and layers and isinstance(layers[0], keras.layers.Embedding) and not layers[0].trainable:
        layers = layers[1:]
    return layers


def resolve_layer(model, layer):
    """A layer by index (int or digit string, negative allowed), the seed's numbering, or by name.

    Names reach every layer, also those without an index (e.g. ``logits`` of architecture 3).
    """
    candidates = indexable_layers(model)
    text = str(layer)
    if text.lstrip("-").isdigit():
        i = int(text)
        if not -len(candidates) <= i < len(candidates):
            raise ConfigError(f"layer index {i} out of range: {model.name} has layers 0..{len(candidates) - 1} "
                              f"({describe_layers(model)})")
        return candidates[i]
    for candidate in model.layers:
        if candidate.name == text and not isinstance(candidate, Standardize):
            return candidate
    raise ConfigError(f"no layer named {text!r} in {model.name} ({describe_layers(model)})")


def describe_layers(model):
    """``"0:name, 1:name, ..."``: the seed's indices (see :func:`indexable_layers`) and our names."""
    return ", ".join(f"{i}:{layer.name}" for i, layer in enumerate(indexable_layers(model)))


def named_layers(model):
    """[(seed index or None, layer)] for every layer ``-l`` reaches, in Keras' order.

    Input layers the seed did not count and the input scaling are left out; layers without a seed
    index (``logits`` where the seed's Dense held the activation, the inside of a nested sub-model)
    have ``None``.
    """
    index = {id(layer): i for i, layer in enumerate(indexable_layers(model))}
    return [(index.get(id(layer)), layer) for layer in model.layers
            if id(layer) in index or not isinstance(layer, (keras.layers.InputLayer, Standardize))]


def layer_model(model, layer):
    """A model from the inputs of ``model`` to the output of ``layer`` (index or name)."""
    target = resolve_layer(model, layer)
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs  # keep the input structure
    return keras.Model(inputs, target.output, name=f"{model.name}_to_{target.name}")


def check_input_shapes(model, shapes, source="the inputs"):
    """Raise DataMismatch unless ``shapes`` (one per input, no batch axis) fit ``model``'s inputs.

    Names the model, each mismatching input with the shape it expects and the shape that came, and
    for patch inputs a channels-first ``(1, frames, bins)`` shape (the seed's patch files) as such.
    """
    from ..errors import DataMismatch
    expected = [tuple(t.shape[1:]) for t in model.inputs]
    shapes = [tuple(s) for s in shapes]
    if len(shapes) != len(expected):
        raise DataMismatch(f"{model.name} takes {len(expected)} input(s) {expected}, {source} give {len(shapes)}")
    for i, (want, got) in enumerate(zip(expected, shapes), 1):
        if len(want) != len(got) or any(w is not None and w != g for w, g in zip(want, got)):
            hint = ""
            if len(want) == 3 and want[2] == 1 and len(got) == 3 and got[0] == 1:
                hint = ": channels first (1, frames, bins), as in the seed's patch files; move the channel axis last"
            raise DataMismatch(f"{model.name} input {i} expects shape {want} (no batch axis), {source} give "
                               f"{got}{hint}")


def load_model(path, compile=False):
    """Load a saved ``.keras`` model in safe mode (no arbitrary code is ever run).

    compile : restore the optimizer and loss too (a checkpoint to resume from); default False.
    Errors name the file, in one line: MissingInput if it is absent; DataMismatch if it is not a
    whole ``.keras`` archive (empty or truncated: Keras itself would say "File not found"), if safe
    mode refuses it because it holds Python code (a ``Lambda`` layer, a custom function), or for
    whatever else Keras could not read in it.
    """
    import re
    import zipfile
    from pathlib import Path

    from ..errors import DataMismatch, MissingInput, TartarusError
    path = Path(path)
    if not path.is_file():
        raise MissingInput(path, what="model file")
    if not zipfile.is_zipfile(path):
        raise DataMismatch(f"{path}: cannot load it as a .keras model: it is empty, truncated or not a .keras "
                           f"(zip) archive; retrain the model")
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=compile)
    except TartarusError:
        raise
    except Exception as exc:  # Keras raises ValueError, TypeError, KeyError ... with long texts
        text = str(exc)
        if "safe_mode" in text or "arbitrary code" in text:
            layer = re.search(r"`(\w+)` layer", text)
            held = f"a {layer.group(1)} layer" if layer else "e.g. a Lambda layer"
            raise DataMismatch(f"{path}: refused: the model holds Python code ({held}), and tartarus loads models "
                               f"in safe mode only, never running code from a file") from None
        reason = (text.strip().splitlines() or [type(exc).__name__])[0]
        raise DataMismatch(f"{path}: cannot load it as a .keras model: {reason}") from None


__all__ = ["ARCHITECTURES", "Architecture", "build_model", "check_input_shapes", "get_architecture",
           "indexable_layers", "named_layers", "resolve_layer", "layer_model", "load_model", "describe_layers",
           "L2Normalize", "Standardize", "build_audio_cnn", "build_dense", "build_branches", "build_text_cnn",
           "build_bn_fusion", "build_l2_fusion", "build_shufl_cnn"]
