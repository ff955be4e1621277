"""Custom layers, registered so that saved models load in Keras safe mode (no Lambda layers)."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="tartarus")
class L2Normalize(keras.layers.Layer):
    """Scale each row to unit L2 norm along ``axis`` (the seed's ``Lambda(K.l2_normalize)``)."""

    def __init__(self, axis=-1, epsilon=1e-12, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis
        self.epsilon = epsilon

    def call(self, x):
        norm = ops.sqrt(ops.maximum(ops.sum(ops.square(x), axis=self.axis, keepdims=True), self.epsilon))
        return x / norm

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="tartarus")
class Standardize(keras.layers.Layer):
    """``(x - mean) / std`` with constants measured on the training set.

    mean, std : floats (one scale for every value), or arrays of one shape that broadcasts against
        an input sample, e.g. (frames, bins, 1) for the seed's per-(frame, bin) StandardScaler.
        Arrays are kept as non-trainable weights (saved in ``model.keras``), floats in the config.
    shape : the arrays' shape, for rebuilding from a config (the values then come from the weights).

    It sits right after the input, so a saved model carries its own input scaling; it is not
    counted by layer indices (see ``models.indexable_layers``).
    """

    def __init__(self, mean=0.0, std=1.0, shape=None, **kwargs):
        super().__init__(**kwargs)
        if shape is None and np.ndim(mean) == 0 and np.ndim(std) == 0:
            self.shape = None
            self.mean = float(mean)
            self.std = float(std) if std else 1.0
            return
        self.shape = tuple(int(d) for d in (np.shape(mean) if shape is None else shape))
        self.mean = self.add_weight(shape=self.shape, initializer="zeros", trainable=False, name="mean")
        self.std = self.add_weight(shape=self.shape, initializer="ones", trainable=False, name="std")
        if mean is not None:
            self.mean.assign(np.broadcast_to(np.asarray(mean, dtype="float32"), self.shape))
        if std is not None:
            std = np.broadcast_to(np.asarray(std, dtype="float32"), self.shape)
            self.std.assign(np.where(std > 0, std, 1.0).astype("float32"))

    def call(self, x):
        if self.shape is None:
            return (x - self.mean) / self.std
        return (x - ops.cast(self.mean, x.dtype)) / ops.cast(self.std, x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        if self.shape is None:
            return {**super().get_config(), "mean": self.mean, "std": self.std}
        return {**super().get_config(), "mean": None, "std": None, "shape": list(self.shape)}
