"""Transfer learning: a pretrained tagger's graph, cut at one of its layers, under a new head.

The architectures ``MTT_musicnn``, ``MSD_musicnn``, ``MTT_vgg`` and ``MSD_vgg`` are the released
musicnn models and their VGG baselines (Pons and Serra 2019; :mod:`tartarus.pretrained`, whose
weights come from the ``musicnn`` package, ``make pretrained``), used as a front end:

- input ``patches``: ``(187, 96, 1)``, musicnn's own input (3 s at 16 kHz, hop 256, 96 mel bands,
  ``log10(10000 x + 1)``), which the dataset entries with ``log_scale = "musicnn"`` make
  (``DUMMY_musicnn``, ``SUPER_musicnn``; ``dataset.window = 3``). No Standardize layer: the
  released graph normalises its input itself (its first batch norm), so ``input_stats`` is unused;
- ``patches_frames`` reshapes to ``(187, 96)``, then the released layers, each with its own name
  (``timbral``, ``temporal``, ``cnn1`` .. ``cnn3``, ``max_pool``, ``mean_pool``, ``penultimate`` for
  musicnn; ``pool1`` .. ``pool5`` for VGG; :mod:`.pretrained_nets`) up to ``cnn.pretrained_layer``
  (default: the model's own embedding, ``penultimate`` / ``pool5``). The graph is rebuilt layer by
  layer on the new input (not nested as one sub-model; :data:`.pretrained_nets.GRAPHS` applied to it, the weights then copied
  by layer name), so ``predict -l penultimate`` reaches every
  released layer by name and a saved model is standard Keras layers only (reloads in safe mode);
- a layer with a time axis (``timbral`` ... ``cnn3``: ``(187, channels)``) or a 2-D map (VGG's
  ``pool1`` .. ``pool4``) is pooled to a vector: its mean and its maximum over the time (and
  frequency) axes, concatenated (``cut_mean``, ``cut_max`` -> ``cut_vector``), as musicnn's back end
  pools its mid end;
- the head: dropout (``head_dropout``, ``cnn.dropout_factor``), with ``cnn.n_dense > 0`` a hidden
  ``dense_1`` (ReLU) and ``dropout_dense_1``, then the shared ``logits`` / ``output`` head
  (:func:`.blocks.output_head`, ``final_activation``; L2-normalised when linear).

``cnn.trainable``:

- ``"head"`` (transfer): every released layer is frozen (``trainable = False``), so its batch norm
  runs in inference mode on its moving statistics, and its dropout layers become ``Identity``: the
  frozen part computes the release's per-patch features, deterministically, and only the head
  trains;
- ``"all"`` (fine-tuning): every released layer trains except batch normalisation, which stays
  frozen and in inference mode (its scale, offset and moving statistics fixed), as Keras' guide
  advises for fine-tuning: updating batch statistics from small batches of a new dataset destroys
  what the front end learned. The release's dropout stays, as it was trained with it. Use a low
  learning rate (1e-4 or less) and few epochs.

The released ``logits`` and ``taggram`` are not cut points (their names are the head's; their
outputs are the release's 50 tags): for the tags as features, ``tartarus embed MODEL DS --layer
taggram`` writes them as a vector input of any vector architecture.
"""

from __future__ import annotations

import keras
from keras import layers

from ..config.families import PretrainedConfig
from ..errors import ConfigError
from .blocks import model_name, output_head, single_input
from .pretrained_nets import GRAPHS

N_FRAMES = 187  # the released models' patch: 3 s at 16 kHz, hop 256
N_BINS = 96
MUSICNN_ENTRIES = "DUMMY_musicnn, SUPER_musicnn"  # experiments/datasets.toml: entries with musicnn's input
NOT_CUT_POINTS = ("logits", "taggram")


def cut_layer(config, spec):
    """The released layer ``config.pretrained_layer`` names (or the spec's default); ConfigError naming
    the layers allowed otherwise."""
    allowed = [name for name in spec.layers if name not in NOT_CUT_POINTS]
    layer = config.pretrained_layer or spec.default_layer
    if layer not in allowed:
        extra = (f"; {layer} is the release's tag output: for the tags as features run tartarus embed "
                 f"{spec.name} DATASET --layer {layer} and train a vector architecture on them"
                 if layer in NOT_CUT_POINTS else "")
        raise ConfigError(f"cnn.pretrained_layer: {spec.name} has no layer {layer!r} to cut at (allowed: "
                          f"{', '.join(allowed)}; \"\" = {spec.default_layer}){extra}")
    return layer


def check_musicnn_patches(shape, arch_id):
    """Raise ConfigError unless ``shape`` is musicnn's ``(187, 96, 1)`` patch, naming the entries to use."""
    shape = tuple(shape)
    if shape != (N_FRAMES, N_BINS, 1):
        raise ConfigError(f"cnn.architecture {arch_id} takes musicnn's input, patches of shape "
                          f"{(N_FRAMES, N_BINS, 1)} (3 s at 16 kHz, hop 256, 96 mel bands, log10(10000 x + 1)), "
                          f"got {shape}: use a dataset entry with log_scale = \"musicnn\" ({MUSICNN_ENTRIES}) "
                          f"and dataset.window = 3")
    return shape


def _vector(x):
    """A cut layer's output as a vector: mean and max over every axis but the channels, concatenated."""
    if len(x.shape) == 2:
        return x
    if len(x.shape) == 3:
        mean, peak = layers.GlobalAveragePooling1D(name="cut_mean")(x), layers.GlobalMaxPooling1D(name="cut_max")(x)
    else:
        mean, peak = layers.GlobalAveragePooling2D(name="cut_mean")(x), layers.GlobalMaxPooling2D(name="cut_max")(x)
    return layers.Concatenate(name="cut_vector")([mean, peak])


def build_transfer(config: PretrainedConfig, input_shapes, n_out, input_stats=None, cache_dir=None):
    """Build architecture ``config.architecture`` (a released model's name) under a new head.

    config : PretrainedConfig (pretrained_layer, trainable, n_dense, dropout_factor, final_activation);
    input_shapes : [(187, 96, 1)]; n_out : output size; input_stats : not used (the released graph
    normalises its input); cache_dir : where converted weights are kept (default
    ``pretrained.default_cache_dir()``). MissingInput naming ``make pretrained`` when the weights are
    not installed.
    """
    from ..pretrained import get_spec, load_pretrained

    arch_id = config.architecture
    spec = get_spec(arch_id)
    shape = check_musicnn_patches(single_input(input_shapes, arch_id), arch_id)
    if config.trainable not in ("head", "all"):
        raise ConfigError(f"cnn.trainable: expected \"head\" or \"all\", got {config.trainable!r}")
    cut = cut_layer(config, spec)
    released = load_pretrained(arch_id, cache_dir)
    frozen = config.trainable == "head"

    inputs = keras.Input(shape=shape, name="patches")
    x = layers.Reshape((N_FRAMES, N_BINS), name="patches_frames")(inputs)
    # the released layers, by their names, on this input (one flat graph: predict -l reaches each)
    graph = keras.Model(inputs, GRAPHS[spec.family](x, dropout=not frozen))
    x = graph.get_layer(cut).output
    for layer in keras.Model(inputs, x).layers:
        if layer.name in ("patches", "patches_frames"):  # ours, not the release's
            continue
        if layer.weights:
            layer.set_weights(released.get_layer(layer.name).get_weights())
        layer.trainable = not (frozen or isinstance(layer, layers.BatchNormalization))
    x = _vector(x)
    x = layers.Dropout(config.dropout_factor, name="head_dropout")(x)
    if config.n_dense > 0:
        x = layers.Dense(config.n_dense, activation="relu", name="dense_1")(x)
        x = layers.Dropout(config.dropout_factor, name="dropout_dense_1")(x)
    outputs = output_head(x, n_out, config.final_activation)
    return keras.Model(inputs, outputs, name=model_name(arch_id))
