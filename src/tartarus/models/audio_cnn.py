"""The seed's audio CNNs over spectrogram patches: architectures 1, 2, 11 and 12.

Written for Keras 3 from the definitions of the original Tartarus (``get_model_1``, ``_2``, ``_11``,
``_12``). Layer sizes default to the seed's (see ``defaults`` in ``ARCHITECTURES``).

Patches are ``(frames, bins, 1)``: time is axis 1, frequency axis 2, and every ``(a, b)`` kernel or
pool of the config is ``(frames, bins)``. Kernels and pools are clipped to what is left of the
patch, so small example shapes build too. Every model starts with a ``Standardize`` layer
(training-set mean and std, ``input_stats``), which layer indices never count.

- **1** -- the seed's Sequential audio CNN: blocks of Conv2D -> [BN] -> activation -> max-pool ->
  dropout (a block whose ``n_filters_i`` is 0 is left out), ``flat``, up to two hidden dense layers
  (``fc_i``, ``dense_i``, ``dropout_dense_i`` for ``n_dense`` / ``n_dense_2`` > 0; the seed's
  ``n_dense`` = N built two N-unit layers: set ``n_dense = n_dense_2 = N`` for that), the head; a
  linear head is followed by L2 normalisation, as in the seed. Layer indices (inputs and input
  scaling not counted) keep the seed's meaning (its Sequential model listed Dense and Activation
  as two layers): with two blocks and no hidden dense layer, index 8 is the flattened features and
  index 9 the output dense layer before its activation, so ``-l 9`` gives the pre-softmax output.
- **2** -- audio CNN + a metadata vector (the seed's multimodal model). Inputs ``patches`` and
  ``metadata``; conv blocks (see 11) flattened as ``flat``; the metadata through Dense(n_dense) and
  dropout (``meta_dense``, ``meta_dropout``; the raw vector when n_dense is 0); both concatenated as
  ``concat`` (the fused representation); the head. Fed ``[patches, vector rows]``: every patch with
  its item's row of the ``META_SUFFIX`` input (input kind ``patches+vectors``).
- **11** -- the seed's audio CNN with the graph API: Conv2D (activation inside) -> max-pool ->
  dropout blocks, ``flat``, the head (linear and L2-normalised by default).
- **12** -- six parallel Conv2D over the patch, concatenated, max-pooled; then conv blocks 2..5
  as in architecture 1, ``flat``, optional dense layers, the head.

The layer tables (what ``predict -l INDEX`` counts: the seed's ``model.layers[INDEX]``) are in each
builder's docstring; the names never change with the config, the indices do. ``cnn.init =
"uniform"`` reaches the layers the seed initialised with ``init="uniform"``: every convolution and
dense layer of these four architectures.
"""

from __future__ import annotations

import keras
from keras import layers

from ..config.families import AudioCnnConfig, AudioMetadataConfig, GraphCnnConfig, ParallelCnnConfig
from ..errors import ConfigError
from .blocks import (check_n_inputs, check_patch_shape, clip_to, conv_block, kernel_init, model_name, output_head,
                     patch_input, seed_hidden_dense, single_input)
from .layers import Standardize

# architecture 12: the seed's parallel filters, (frames, bins, filters)
PARALLEL_FILTERS = ((1, 70, 64), (5, 70, 32), (10, 70, 32), (1, 35, 64), (5, 35, 32), (10, 35, 32))


# ------------------------------------------------------------------------- 1: the seed's CNN
def build_audio_cnn(config: AudioCnnConfig, input_shapes, n_out, input_stats=(0.0, 1.0)):
    """Build architecture 1.

    config : AudioCnnConfig; input_shapes : [(frames, bins, 1)]; n_out : output size;
    input_stats : (mean, std) of the training patches, baked into a Standardize layer.
    """
    input_shape = check_patch_shape(single_input(input_shapes, "1"), "1")
    bins = input_shape[1]
    inputs = keras.Input(shape=tuple(input_shape), name="patches")
    x = Standardize(*input_stats, name="standardize")(inputs)
    for block in config.conv_blocks():
        kernel = list(block.kernel)
        if block.index == 1:  # the seed's (4, 96) kernel spans all bins; keep that meaning for other bin counts
            kernel[1] = min(kernel[1], bins)
        kernel = (min(kernel[0], x.shape[1]), min(kernel[1], x.shape[2]))
        x = conv_block(x, block.index, block.filters, kernel, block.pool, config.activation,
                       config.dropout_factor, config.batch_norm, init=kernel_init(config.init))
    x = layers.Flatten(name="flat")(x)
    x = seed_hidden_dense(x, config.hidden_units(), config.activation, config.dropout_factor, config.init)
    outputs = output_head(x, n_out, config.final_activation, kernel_init(config.init))
    return keras.Model(inputs, outputs, name=model_name("1"))


# ----------------------------------------------------------------------- graph-API blocks
def graph_conv_block(x, i, filters, kernel, pool, activation, dropout, init="glorot_uniform"):
    """The seed's graph-API block: Conv2D(activation inside, valid) -> max-pool -> dropout.

    (batch, t, f, c) -> (batch, t', f', filters); layers ``conv_i``, ``pool_i``, ``dropout_i``.
    """
    x = layers.Conv2D(filters, clip_to(kernel, x), padding="valid", activation=activation,
                      kernel_initializer=init, name=f"conv_{i}")(x)
    x = layers.MaxPooling2D(clip_to(pool, x), name=f"pool_{i}")(x)
    return layers.Dropout(dropout, name=f"dropout_{i}")(x)


def graph_conv_stack(x, config, arch_id):
    """The present blocks of :func:`graph_conv_block` (``config.conv_blocks()``), flattened as ``flat``.

    config : AudioMetadataConfig or GraphCnnConfig (activation, dropout_factor, init).
    """
    present = config.conv_blocks()
    if not present:
        raise ConfigError(f"cnn.architecture {arch_id}: no convolution (every cnn.n_filters_i is 0)")
    for block in present:
        x = graph_conv_block(x, block.index, block.filters, block.kernel, block.pool, config.activation,
                             config.dropout_factor, kernel_init(config.init))
    return layers.Flatten(name="flat")(x)


# ------------------------------------------------------------------- 2: audio CNN + metadata
def build_audio_metadata(config: AudioMetadataConfig, input_shapes, n_out, input_stats=(0.0, 1.0)):
    """Build architecture 2: the seed's audio CNN fused with a dense projection of a metadata vector.

    input_shapes : [(frames, bins, 1), (n_features,)]; input_stats : (mean, std) of the training
    patches. Conv blocks as architecture 11 (``conv_i`` with the activation inside, ``pool_i``,
    ``dropout_i``), ``flat``; the metadata vector through ``meta_dense`` = Dense(n_dense, activation)
    and ``meta_dropout`` (left out when n_dense is 0: the vector joins as it is); ``concat``; the head
    (the seed's is linear and L2-normalised: ``final_activation = "linear"``).

    Layer indices are the seed's (its functional model: inputs counted; the output Dense held the
    activation, so ``logits`` has no index). Keras lists a multi-input model's layers by depth (so
    did the seed's), so the short metadata branch interleaves with the end of the conv stack and its
    indices move with the number of blocks; the names work too (``-l flat``, ``-l concat``). With
    the seed's four blocks and n_dense > 0::

        0 patches
        1 conv_1   2 pool_1   3 dropout_1      4 conv_2   5 pool_2   6 dropout_2
        7 conv_3   8 pool_3   9 dropout_3     10 conv_4  11 pool_4
        12 metadata   13 dropout_4   14 meta_dense   15 flat   16 meta_dropout
        17 concat (the fused representation)
        18 output  19 l2_normalize (linear head only)
    """
    check_n_inputs(input_shapes, "2", 2)
    patches = patch_input(input_shapes[0], "2")
    if len(tuple(input_shapes[1])) != 1:
        raise ConfigError(f"cnn.architecture 2: input 2 must be vectors (one axis), got shape {tuple(input_shapes[1])}")
    metadata = keras.Input(shape=tuple(input_shapes[1]), name="metadata")
    x = Standardize(*input_stats, name="standardize")(patches)
    x = graph_conv_stack(x, config, "2")
    m = metadata
    if config.n_dense > 0:
        m = layers.Dense(config.n_dense, activation=config.activation, kernel_initializer=kernel_init(config.init),
                         name="meta_dense")(m)
        m = layers.Dropout(config.dropout_factor, name="meta_dropout")(m)
    x = layers.Concatenate(name="concat")([x, m])
    outputs = output_head(x, n_out, config.final_activation, kernel_init(config.init))
    return keras.Model([patches, metadata], outputs, name=model_name("2"))


# --------------------------------------------------------------- 11: audio CNN, graph API
def build_audio_graph(config: GraphCnnConfig, input_shapes, n_out, input_stats=(0.0, 1.0)):
    """Build architecture 11: the seed's functional audio CNN with a named ``flat`` layer.

    input_shapes : [(frames, bins, 1)]. Blocks ``i`` with ``n_filters_i`` > 0: Conv2D(valid,
    ``activation`` inside) -> max-pool -> dropout; ``flat``; the head -- no hidden dense layer (the
    seed's has none; ``n_dense`` is not read). The seed's head is linear and L2-normalised
    (``final_activation = "linear"``, the default).

    Layer indices are the seed's (the input counted; ``logits`` has no index, since the seed's output
    Dense held the activation), with four blocks -- 13 is ``flat``, as in the seed's ``-l 13``::

        0 patches
        1 conv_1   2 pool_1   3 dropout_1      4 conv_2   5 pool_2   6 dropout_2
        7 conv_3   8 pool_3   9 dropout_3     10 conv_4  11 pool_4  12 dropout_4
        13 flat   14 output   15 l2_normalize (linear head only)
    """
    check_n_inputs(input_shapes, "11", 1)
    inputs = patch_input(input_shapes[0], "11")
    x = Standardize(*input_stats, name="standardize")(inputs)
    x = graph_conv_stack(x, config, "11")
    outputs = output_head(x, n_out, config.final_activation, kernel_init(config.init))
    return keras.Model(inputs, outputs, name=model_name("11"))


# ------------------------------------------------------------ 12: parallel convolutions
def parallel_convolutions(x, pool, activation, init):
    """The seed's six Conv2D(same) of ``PARALLEL_FILTERS`` over ``x``, concatenated, max-pooled by ``pool``.

    (batch, t, f, 1) -> (batch, t', f', 256): layers ``branch_k`` (k = 1..6), ``concat`` (the seed's
    nested sub-model), ``pool_1``. Pooling after the concatenation, as the seed, equals pooling each
    branch (max-pooling acts per channel). ``init`` is ``cnn.init``.
    """
    branches = [layers.Conv2D(filters, clip_to((frames, bins), x), padding="same", activation=activation,
                              kernel_initializer=kernel_init(init), name=f"branch_{k}")(x)
                for k, (frames, bins, filters) in enumerate(PARALLEL_FILTERS, 1)]
    x = layers.Concatenate(name="concat")(branches)
    return layers.MaxPooling2D(clip_to(pool, x), name="pool_1")(x)


def build_parallel_cnn(config: ParallelCnnConfig, input_shapes, n_out, input_stats=(0.0, 1.0)):
    """Build architecture 12: six parallel convolutions of different extents, then architecture 1's blocks.

    input_shapes : [(frames, bins, 1)]. Branches of (frames x bins) 1x70, 5x70, 10x70, 1x35, 5x35,
    10x35 with 64, 32, 32, 64, 32, 32 filters (``activation`` inside, same padding; extents clipped to
    the patch; ``n_filters_1``/``n_kernel_1`` are not read), ``concat`` (256 channels), ``pool_1``
    (``n_pool_1``) and ``dropout_1``; then blocks 2..5 as architecture 1 (Conv2D valid -> [BN] ->
    activation -> max-pool -> dropout, when ``n_filters_i`` > 0), ``flat``, the hidden layers of
    architecture 1 (``fc_i``, ``dense_i``, ``dropout_dense_i`` for ``n_dense`` / ``n_dense_2`` > 0;
    the seed's ``n_dense`` = N built two N-unit layers), the head.

    Layer indices are the seed's (``get_model_12``: a Sequential model, the input not counted, the
    six convolutions and their concatenation one nested sub-model counted as one layer, our
    ``concat``; ``branch_k`` have no index but work by name). With blocks 2..4 and no dense layer::

        0 concat   1 pool_1   2 dropout_1
        3 conv_2   4 act_2   5 pool_2   6 dropout_2      7 conv_3   8 act_3   9 pool_3  10 dropout_3
        11 conv_4  12 act_4  13 pool_4  14 dropout_4     15 flat
        16 logits  17 output  18 l2_normalize (linear head only)
    """
    check_n_inputs(input_shapes, "12", 1)
    inputs = patch_input(input_shapes[0], "12")
    x = Standardize(*input_stats, name="standardize")(inputs)
    x = parallel_convolutions(x, config.n_pool_1, config.activation, config.init)
    x = layers.Dropout(config.dropout_factor, name="dropout_1")(x)
    for block in config.conv_blocks():
        x = conv_block(x, block.index, block.filters, clip_to(block.kernel, x), block.pool, config.activation,
                       config.dropout_factor, config.batch_norm, init=kernel_init(config.init))
    x = layers.Flatten(name="flat")(x)
    x = seed_hidden_dense(x, config.hidden_units(), config.activation, config.dropout_factor, config.init)
    outputs = output_head(x, n_out, config.final_activation, kernel_init(config.init))
    return keras.Model(inputs, outputs, name=model_name("12"))
