"""tartarus: deep-learning experiments on music audio, text and their combination."""

__version__ = "0.1.0"
