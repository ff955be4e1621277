"""Architecture 4: a Kim-style text CNN over word embeddings.

The input is word ids, ``(sequence_length,)`` int32 (padded by the feeder). An ``Embedding`` layer
is initialised from the word2vec matrix ``embedding`` (vocab, embedding_dim) when given -- trainable
by default (the seed's CNN-non-static), frozen with ``embedding_trainable = false`` (CNN-static) --
or at random with ``vocab_size`` rows when not (CNN-rnd). Then dropout ``dropout_prob[0]``, one
Conv1D(num_filters, size, relu) + global max-pooling per entry of ``filter_sizes``, concatenated,
Dense(n_dense, relu), dropout ``dropout_prob[1]``, and the shared head.

The embedding matrix is copied in with ``set_weights`` after building, so the saved model holds
it as a weight (not as a constant initializer) and loads in safe mode.

Layer indices (``-l``) are the seed's: its ``get_model_4`` was a Sequential model (the input not
counted) holding the convolutions as one nested sub-model, counted as one layer, whose output is
our ``concat`` (``pool_1`` with one filter size); ``conv_k`` and ``pool_k`` have no index (their
names work). Its hidden layer was Dense, Dropout, Activation: here ``fc_1``, ``dropout_dense_1``
and ``dense_1`` (the relu output, the text embedding). With ``n_dense > 0``::

    0 embedding   1 dropout_embedding   2 concat (the pooled convolutions)
    3 fc_1   4 dropout_dense_1   5 dense_1 (relu: the text embedding)
    6 logits   7 output   8 l2_normalize (linear head only)

With ``n_dense = 0``: ``dropout_features`` (``dropout_prob[1]``) replaces 3-5. With
``embedding_trainable = false`` (the seed's CNN-static, whose input was already embedded) the seed
had no Embedding layer, so ``embedding`` has no index and ``dropout_embedding`` is 0. ``cnn.init``
reaches only ``logits``, the one layer the seed initialised with ``init="uniform"``.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from ..config.families import TextCnnConfig
from ..errors import ConfigError
from .blocks import embedding_size, kernel_init, model_name, output_head, sequence_length

ARCH_ID = "4"


def build_text_cnn(config: TextCnnConfig, input_shapes, n_out, embedding=None):
    """Build architecture 4.

    config : TextCnnConfig; input_shapes : [(sequence_length,)]; n_out : output size;
    embedding : optional (vocab, embedding_dim) array.
    """
    length = sequence_length(input_shapes, ARCH_ID, config.sequence_length)
    sizes = tuple(config.filter_sizes)
    if not sizes or any(s <= 0 for s in sizes):
        raise ConfigError(f"cnn.filter_sizes: expected one or more positive sizes, got {list(sizes)}")
    if max(sizes) > length:
        raise ConfigError(f"cnn.filter_sizes: size {max(sizes)} is longer than the sequences ({length} words)")
    vocab, dim = embedding_size(embedding, config.embedding_dim, config.vocab_size, ARCH_ID)

    inputs = keras.Input(shape=(length,), dtype="int32", name="input_1")
    emb_layer = layers.Embedding(vocab, dim, trainable=config.embedding_trainable, name="embedding")
    x = emb_layer(inputs)
    x = layers.Dropout(config.dropout_prob[0], name="dropout_embedding")(x)
    pooled = []
    for i, size in enumerate(sizes, 1):
        conv = layers.Conv1D(config.num_filters, size, padding="valid", activation="relu", name=f"conv_{i}")(x)
        pooled.append(layers.GlobalMaxPooling1D(name=f"pool_{i}")(conv))
    x = layers.Concatenate(name="concat")(pooled) if len(pooled) > 1 else pooled[0]
    if config.n_dense > 0:  # the seed's order: Dense, Dropout, Activation
        x = layers.Dense(config.n_dense, name="fc_1")(x)
        x = layers.Dropout(config.dropout_prob[1], name="dropout_dense_1")(x)
        x = layers.Activation("relu", name="dense_1")(x)
    else:
        x = layers.Dropout(config.dropout_prob[1], name="dropout_features")(x)
    outputs = output_head(x, n_out, config.final_activation, kernel_init(config.init))
    model = keras.Model(inputs, outputs, name=model_name(ARCH_ID))
    if embedding is not None:
        emb_layer.set_weights([np.asarray(embedding, dtype=emb_layer.embeddings.dtype)])
    return model
