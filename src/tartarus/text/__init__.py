"""Text features: one tokenizer, tf-idf (bow), word2vec sequences and weights (w2v), doc2vec tag targets (d2v).

Importing this package is cheap: scikit-learn and gensim are imported by the functions that use them.
"""

from .corpus import read_texts
from .doc2vec import build_d2v_targets, tags_from_matrix
from .tokenize import tokenize
from .vsm import build_vsm
from .w2v import build_w2v

__all__ = ["tokenize", "read_texts", "build_vsm", "build_w2v", "build_d2v_targets", "tags_from_matrix"]
