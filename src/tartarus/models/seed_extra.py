"""The seed's remaining architectures: 2, 5, 11, 12 (audio) and 41 (text).

Written for Keras 3 from the definitions of the original Tartarus (``get_model_2``, ``_5``, ``_11``,
``_12``, ``_41``) and, for 5, of Choi et al. (2017), "Convolutional recurrent neural networks for
music classification". Layer sizes default to the seed's (see ``defaults`` in ``ARCHITECTURES``).

Patches are ``(frames, bins, 1)``: time is axis 1, frequency axis 2, and every ``(a, b)`` kernel or
pool of the config is ``(frames, bins)``. Kernels and pools are clipped to what is left of the
patch, so small example shapes build too. Every audio model starts with a ``Standardize`` layer
(training-set mean and std), which layer indices never count.

- **2** -- audio CNN + a metadata vector (the seed's multimodal model). Inputs ``patches`` and
  ``metadata``; conv blocks (see 11) flattened as ``flat``; the metadata through Dense(n_dense) and
  dropout (``meta_dense``, ``meta_dropout``; the raw vector when n_dense is 0); both concatenated as
  ``concat`` (the fused representation); the head. Fed ``[patches, vector rows]``: every patch with
  its item's row of the ``META_SUFFIX`` input (input kind ``patches+vectors``).
- **5** -- Choi's CRNN: time zero-padding, per-bin batch normalisation, four blocks of
  Conv2D 3x3 (same) -> batch norm -> ELU -> max-pool -> dropout, the remaining frames as a sequence
  of (bins x filters) vectors, two GRUs, dropout, the head.
- **11** -- the seed's audio CNN with the graph API: Conv2D (activation inside) -> max-pool ->
  dropout blocks, ``flat``, the head (linear and L2-normalised by default).
- **12** -- six parallel Conv2D over the patch, concatenated, max-pooled; then conv blocks 2..5
  as in architecture 1, ``flat``, optional dense layers, the head.
- **41** -- word ids -> Embedding (word2vec weights or random) -> LSTM(2048) -> the head.

The layer tables (what ``predict -l INDEX`` counts: the seed's ``model.layers[INDEX]``) are in each
builder's docstring; the names never change with the config, the indices do. Architecture 5 is the
exception: the seed's channels-first model had two Permute layers that a channels-last model does
not need, so from ``conv_1`` on its indices are 1 (then 2) lower than the seed's; use the names.
``cnn.init = "uniform"`` reaches the layers the seed initialised with ``init="uniform"``: every
convolution and dense layer of 2, 11 and 12, the output layer of 41; none of 5.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import layers

from ..errors import ConfigError
from .audio_cnn import check_patch_shape, conv_block, kernel_init, model_name, output_head, seed_hidden_dense
from .dense import check_n_inputs
from .layers import Standardize

# architecture 12: the seed's parallel filters, (frames, bins, filters)
PARALLEL_FILTERS = ((1, 70, 64), (5, 70, 32), (10, 70, 32), (1, 35, 64), (5, 35, 32), (10, 35, 32))
DEFAULT_GRU_UNITS = (32, 32)  # architecture 5 (Choi's CRNN)
DEFAULT_LSTM_UNITS = (2048,)  # architecture 41 (the seed's LSTM)


# ------------------------------------------------------------------------------------ helpers
def patch_input(shape, arch_id, name="patches"):
    """A ``(frames, bins, 1)`` input named ``name``, after checking the shape (``check_patch_shape``)."""
    return keras.Input(shape=check_patch_shape(shape, arch_id, which=f"input {name!r}"), name=name)


def clip_to(size, x):
    """A ``(frames, bins)`` kernel or pool no larger than the feature map ``x`` (batch, t, f, c)."""
    return (max(1, min(int(size[0]), x.shape[1])), max(1, min(int(size[1]), x.shape[2])))


def blocks(cnn, first=1):
    """Indices ``i`` (from ``first`` to 5) whose block is present: ``n_filters_i`` > 0."""
    return [i for i in range(first, 6) if getattr(cnn, f"n_filters_{i}") > 0]


def graph_conv_block(x, i, filters, kernel, pool, activation, dropout, init="glorot_uniform"):
    """The seed's graph-API block: Conv2D(activation inside, valid) -> max-pool -> dropout.

    (batch, t, f, c) -> (batch, t', f', filters); layers ``conv_i``, ``pool_i``, ``dropout_i``.
    """
    x = layers.Conv2D(filters, clip_to(kernel, x), padding="valid", activation=activation,
                      kernel_initializer=init, name=f"conv_{i}")(x)
    x = layers.MaxPooling2D(clip_to(pool, x), name=f"pool_{i}")(x)
    return layers.Dropout(dropout, name=f"dropout_{i}")(x)


def graph_conv_stack(x, cnn, arch_id):
    """Blocks 1..5 of :func:`graph_conv_block` (those with ``n_filters_i`` > 0), flattened as ``flat``."""
    present = blocks(cnn)
    if not present:
        raise ConfigError(f"cnn.architecture {arch_id}: no convolution (every cnn.n_filters_i is 0)")
    for i in present:
        x = graph_conv_block(x, i, getattr(cnn, f"n_filters_{i}"), getattr(cnn, f"n_kernel_{i}"),
                             getattr(cnn, f"n_pool_{i}"), cnn.activation, cnn.dropout_factor, kernel_init(cnn))
    return layers.Flatten(name="flat")(x)


# ------------------------------------------------------------------- 2: audio CNN + metadata
def build_audio_metadata(cnn, input_shapes, n_out, input_stats=(0.0, 1.0), **_):
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
    x = graph_conv_stack(x, cnn, "2")
    m = metadata
    if cnn.n_dense and cnn.n_dense > 0:
        m = layers.Dense(cnn.n_dense, activation=cnn.activation, kernel_initializer=kernel_init(cnn),
                         name="meta_dense")(m)
        m = layers.Dropout(cnn.dropout_factor, name="meta_dropout")(m)
    x = layers.Concatenate(name="concat")([x, m])
    outputs = output_head(x, n_out, cnn.final_activation, kernel_init(cnn))
    return keras.Model([patches, metadata], outputs, name=model_name("2"))


# ------------------------------------------------------------------------------- 5: CRNN
def time_padding(frames, pools):
    """(before, after) zero frames that make ``frames`` a multiple of the product of the time pools.

    With Choi's pools (2, 3, 4, 4) and 1366 frames this is (37, 37), the seed's padding.
    """
    step = math.prod(max(1, int(p)) for p in pools)
    total = -frames % step
    return total // 2, total - total // 2


def crnn_block(x, i, filters, kernel, pool, activation, dropout):
    """Conv2D(same) -> BatchNormalization -> activation -> max-pool -> dropout (Choi's block)."""
    x = layers.Conv2D(filters, clip_to(kernel, x), padding="same", kernel_initializer="glorot_uniform",
                      name=f"conv_{i}")(x)
    x = layers.BatchNormalization(name=f"bn_{i}")(x)
    x = layers.Activation(activation, name=f"act_{i}")(x)
    x = layers.MaxPooling2D(clip_to(pool, x), name=f"pool_{i}")(x)
    return layers.Dropout(dropout, name=f"dropout_{i}")(x)


def build_crnn(cnn, input_shapes, n_out, input_stats=(0.0, 1.0), **_):
    """Build architecture 5: Choi et al.'s CRNN over patches.

    input_shapes : [(frames, bins, 1)]. ``pad_time`` zero-pads the frames to a multiple of the
    product of the time pools (Choi's 1366 -> 1440), ``bn_freq`` normalises each bin
    (BatchNormalization over axis 2), then blocks ``i`` with ``n_filters_i`` > 0 (Choi: 64, 128,
    128, 128 filters of 3x3, pools 2x2, 3x3, 4x4, 4x4, dropout ``dropout_factor`` 0.1; batch
    normalisation always, ``activation`` ELU), ``sequence`` reshapes (t, f, c) to t steps of f*c
    values, stacked GRUs of ``rnn_units`` (default 32, 32; all but the last return sequences),
    ``dropout_rnn`` (``rnn_dropout``, 0.3) and the head (``final_activation``; Choi's is sigmoid).

    Layer indices (the input counted, as in the seed's functional model), with four blocks::

        0 patches   1 pad_time   2 bn_freq
        3 conv_1   4 bn_1   5 act_1   6 pool_1   7 dropout_1
        8 conv_2   9 bn_2  10 act_2  11 pool_2  12 dropout_2
        13 conv_3 14 bn_3  15 act_3  16 pool_3  17 dropout_3
        18 conv_4 19 bn_4  20 act_4  21 pool_4  22 dropout_4
        23 sequence   24 gru_1   25 gru_2 (the clip representation)   26 dropout_rnn
        27 logits   28 output   29 l2_normalize (linear head only)
    """
    check_n_inputs(input_shapes, "5", 1)
    inputs = patch_input(input_shapes[0], "5")
    present = blocks(cnn)
    if not present:
        raise ConfigError("cnn.architecture 5: no convolution (every cnn.n_filters_i is 0)")
    units = tuple(cnn.rnn_units) or DEFAULT_GRU_UNITS
    if any(u <= 0 for u in units):
        raise ConfigError(f"cnn.rnn_units: expected positive sizes, got {list(units)}")
    x = Standardize(*input_stats, name="standardize")(inputs)
    x = layers.ZeroPadding2D((time_padding(x.shape[1], [getattr(cnn, f"n_pool_{i}")[0] for i in present]), (0, 0)),
                             name="pad_time")(x)
    x = layers.BatchNormalization(axis=2, name="bn_freq")(x)
    for i in present:
        x = crnn_block(x, i, getattr(cnn, f"n_filters_{i}"), getattr(cnn, f"n_kernel_{i}"),
                       getattr(cnn, f"n_pool_{i}"), cnn.activation, cnn.dropout_factor)
    steps, bins, channels = x.shape[1:]
    x = layers.Reshape((steps, bins * channels), name="sequence")(x)
    for j, n in enumerate(units, 1):
        x = layers.GRU(n, return_sequences=j < len(units), name=f"gru_{j}")(x)
    x = layers.Dropout(cnn.rnn_dropout, name="dropout_rnn")(x)
    outputs = output_head(x, n_out, cnn.final_activation)
    return keras.Model(inputs, outputs, name=model_name("5"))


# --------------------------------------------------------------- 11: audio CNN, graph API
def build_audio_graph(cnn, input_shapes, n_out, input_stats=(0.0, 1.0), **_):
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
    x = graph_conv_stack(x, cnn, "11")
    outputs = output_head(x, n_out, cnn.final_activation, kernel_init(cnn))
    return keras.Model(inputs, outputs, name=model_name("11"))


# ------------------------------------------------------------ 12: parallel convolutions
def parallel_convolutions(x, cnn):
    """The seed's six Conv2D(same) of ``PARALLEL_FILTERS`` over ``x``, concatenated, max-pooled by ``n_pool_1``.

    (batch, t, f, 1) -> (batch, t', f', 256): layers ``branch_k`` (k = 1..6), ``concat`` (the seed's
    nested sub-model), ``pool_1``. Pooling after the concatenation, as the seed, equals pooling each
    branch (max-pooling acts per channel).
    """
    branches = [layers.Conv2D(filters, clip_to((frames, bins), x), padding="same", activation=cnn.activation,
                              kernel_initializer=kernel_init(cnn), name=f"branch_{k}")(x)
                for k, (frames, bins, filters) in enumerate(PARALLEL_FILTERS, 1)]
    x = layers.Concatenate(name="concat")(branches)
    return layers.MaxPooling2D(clip_to(cnn.n_pool_1, x), name="pool_1")(x)


def build_parallel_cnn(cnn, input_shapes, n_out, input_stats=(0.0, 1.0), **_):
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
    x = parallel_convolutions(x, cnn)
    x = layers.Dropout(cnn.dropout_factor, name="dropout_1")(x)
    for i in blocks(cnn, first=2):
        x = conv_block(x, i, getattr(cnn, f"n_filters_{i}"), clip_to(getattr(cnn, f"n_kernel_{i}"), x),
                       getattr(cnn, f"n_pool_{i}"), cnn.activation, cnn.dropout_factor, cnn.batch_norm,
                       init=kernel_init(cnn))
    x = layers.Flatten(name="flat")(x)
    x = seed_hidden_dense(x, cnn)
    outputs = output_head(x, n_out, cnn.final_activation, kernel_init(cnn))
    return keras.Model(inputs, outputs, name=model_name("12"))


# ------------------------------------------------------------------- 41: embedding + LSTM
def embedding_size(cnn, embedding, arch_id):
    """(vocab, dim) of the Embedding layer: the word2vec matrix's, or ``vocab_size`` x ``embedding_dim``."""
    if embedding is not None:
        if embedding.ndim != 2:
            raise ConfigError(f"embedding matrix must be 2-D (vocab, dim), got shape {embedding.shape}")
        if embedding.shape[1] != cnn.embedding_dim:
            raise ConfigError(f"embedding matrix has dim {embedding.shape[1]} but cnn.embedding_dim is "
                              f"{cnn.embedding_dim}")
        return embedding.shape
    if not cnn.vocab_size or cnn.vocab_size <= 0:
        raise ConfigError(f"cnn.vocab_size: must be > 0 when no embedding matrix is given "
                          f"(cnn.architecture {arch_id}, random embedding)")
    return cnn.vocab_size, cnn.embedding_dim


def build_text_lstm(cnn, input_shapes, n_out, embedding=None, **_):
    """Build architecture 41: word ids -> Embedding -> stacked LSTMs -> the head.

    input_shapes : [(sequence_length,)] int word ids; embedding : optional (vocab, embedding_dim)
    word2vec matrix (``train_data/embedding_weights_{suffix}_{ds}.npy``), copied into the trainable
    (``embedding_trainable``) Embedding layer after building, else ``vocab_size`` random rows. LSTMs
    of ``rnn_units`` (default the seed's single 2048-unit LSTM; all but the last return sequences).
    The seed's model has no dropout and a linear, L2-normalised head (``final_activation``).

    Layer indices (the input not counted, as in the seed's Sequential model)::

        0 embedding   1 lstm_1 (the text representation)   2 logits   3 output   4 l2_normalize (linear head only)

    (with k LSTMs: 1..k lstm_1..lstm_k, then the head).
    """
    check_n_inputs(input_shapes, "41", 1)
    shape = tuple(input_shapes[0])
    if len(shape) != 1:
        raise ConfigError(f"cnn.architecture 41: input must be word-id sequences (one axis), got shape {shape}")
    length = shape[0] if shape[0] is not None else cnn.sequence_length
    units = tuple(cnn.rnn_units) or DEFAULT_LSTM_UNITS
    if any(u <= 0 for u in units):
        raise ConfigError(f"cnn.rnn_units: expected positive sizes, got {list(units)}")
    embedding = None if embedding is None else np.asarray(embedding)
    vocab, dim = embedding_size(cnn, embedding, "41")

    inputs = keras.Input(shape=(length,), dtype="int32", name="input_1")
    emb_layer = layers.Embedding(vocab, dim, trainable=cnn.embedding_trainable, name="embedding")
    x = emb_layer(inputs)
    for j, n in enumerate(units, 1):
        x = layers.LSTM(n, return_sequences=j < len(units), name=f"lstm_{j}")(x)
    outputs = output_head(x, n_out, cnn.final_activation, kernel_init(cnn))
    model = keras.Model(inputs, outputs, name=model_name("41"))
    if embedding is not None:
        emb_layer.set_weights([embedding.astype(emb_layer.embeddings.dtype)])
    return model
