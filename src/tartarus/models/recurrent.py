"""Recurrent models: Choi's CRNN over patches (architecture 5) and the seed's text LSTM (41).

Written for Keras 3 from Choi et al. (2017), "Convolutional recurrent neural networks for music
classification", and the original Tartarus's ``get_model_5`` and ``get_model_41``. Layer sizes
default to theirs (see ``defaults`` in ``ARCHITECTURES``).

- **5** -- Choi's CRNN: time zero-padding, per-bin batch normalisation, four blocks of
  Conv2D 3x3 (same) -> batch norm -> ELU -> max-pool -> dropout, the remaining frames as a sequence
  of (bins x filters) vectors, two GRUs, dropout, the head. Patches are ``(frames, bins, 1)``, and
  every ``(a, b)`` kernel or pool of the config is ``(frames, bins)``, clipped to what is left.
  The seed's channels-first model had two Permute layers that a channels-last model does not need,
  so from ``conv_1`` on its indices are 1 (then 2) lower than the seed's; use the names.
  ``cnn.init`` is not read (Choi's layers use Keras' default initialiser).
- **41** -- word ids -> Embedding (word2vec weights or random) -> LSTM(2048) -> the head.
  ``cnn.init`` reaches only the output layer, the one the seed initialised with ``init="uniform"``.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import layers

from ..config.families import CrnnConfig, TextLstmConfig
from ..errors import ConfigError
from .blocks import (check_n_inputs, clip_to, embedding_size, kernel_init, model_name, output_head, patch_input,
                     sequence_length)
from .layers import Standardize

DEFAULT_GRU_UNITS = (32, 32)  # architecture 5 (Choi's CRNN)
DEFAULT_LSTM_UNITS = (2048,)  # architecture 41 (the seed's LSTM)


def rnn_sizes(rnn_units, default):
    """``cnn.rnn_units``, or ``default`` when it is empty; ConfigError on a size that is not positive."""
    units = tuple(rnn_units) or default
    if any(u <= 0 for u in units):
        raise ConfigError(f"cnn.rnn_units: expected positive sizes, got {list(units)}")
    return units


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


def build_crnn(config: CrnnConfig, input_shapes, n_out, input_stats=(0.0, 1.0)):
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
    present = config.conv_blocks()
    if not present:
        raise ConfigError("cnn.architecture 5: no convolution (every cnn.n_filters_i is 0)")
    units = rnn_sizes(config.rnn_units, DEFAULT_GRU_UNITS)
    x = Standardize(*input_stats, name="standardize")(inputs)
    x = layers.ZeroPadding2D((time_padding(x.shape[1], [block.pool[0] for block in present]), (0, 0)),
                             name="pad_time")(x)
    x = layers.BatchNormalization(axis=2, name="bn_freq")(x)
    for block in present:
        x = crnn_block(x, block.index, block.filters, block.kernel, block.pool, config.activation,
                       config.dropout_factor)
    steps, bins, channels = x.shape[1:]
    x = layers.Reshape((steps, bins * channels), name="sequence")(x)
    for j, n in enumerate(units, 1):
        x = layers.GRU(n, return_sequences=j < len(units), name=f"gru_{j}")(x)
    x = layers.Dropout(config.rnn_dropout, name="dropout_rnn")(x)
    outputs = output_head(x, n_out, config.final_activation)
    return keras.Model(inputs, outputs, name=model_name("5"))


# ------------------------------------------------------------------- 41: embedding + LSTM
def build_text_lstm(config: TextLstmConfig, input_shapes, n_out, embedding=None):
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
    length = sequence_length(input_shapes, "41", config.sequence_length)
    units = rnn_sizes(config.rnn_units, DEFAULT_LSTM_UNITS)
    embedding = None if embedding is None else np.asarray(embedding)
    vocab, dim = embedding_size(embedding, config.embedding_dim, config.vocab_size, "41")

    inputs = keras.Input(shape=(length,), dtype="int32", name="input_1")
    emb_layer = layers.Embedding(vocab, dim, trainable=config.embedding_trainable, name="embedding")
    x = emb_layer(inputs)
    for j, n in enumerate(units, 1):
        x = layers.LSTM(n, return_sequences=j < len(units), name=f"lstm_{j}")(x)
    outputs = output_head(x, n_out, config.final_activation, kernel_init(config.init))
    model = keras.Model(inputs, outputs, name=model_name("41"))
    if embedding is not None:
        emb_layer.set_weights([embedding.astype(emb_layer.embeddings.dtype)])
    return model
