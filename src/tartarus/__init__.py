"""tartarus: deep-learning experiments on music audio, text and their combination."""

__version__ = "0.1.0"

# saved models hold tartarus's custom layers (Standardize, L2Normalize): have them registered with
# Keras once it is imported, so keras.saving.load_model works after `import tartarus` alone; Keras
# itself is not imported here (see keras_objects)
from .keras_objects import register_custom_layers as _register_custom_layers  # noqa: E402

_register_custom_layers()
