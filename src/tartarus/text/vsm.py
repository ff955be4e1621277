"""tf-idf vectors of a dataset's texts (the seed's ``load_vsm.py``), one sparse matrix per split.

The vectorizer is scikit-learn's ``TfidfVectorizer`` with ``tartarus.text.tokenize`` as its
tokenizer, fitted on the train split only (its vocabulary, document frequencies and idf come from
the train texts), then applied to every split: a word seen only in val or test has no column.

Defaults as the seed's ``load_vsm.py``: only the first 300 words of each text count
(``n_words``), terms in more than half of the train texts are dropped (``max_df`` 0.5), the 10,000
most frequent terms are kept (``max_features``), sublinear tf, l2-normalised rows. The seed cut its
texts at 300 space-separated words before scikit-learn's own tokenizer; here the cut is at 300
tokens of ``tokenize`` (punctuation is never a token, one-letter words are).
"""

from __future__ import annotations

from functools import partial

import numpy as np

from .. import fileio
from ..checks import check_int
from ..errors import ConfigError
from .corpus import FeatureFiles, check_sets, read_texts
from .tokenize import TOKENIZER_VERSION, tokenize

__all__ = ["build_vsm", "make_vectorizer"]

SUFFIX = "bow"
N_WORDS = 300  # the seed's N_WORDS: words of each text that count
MAX_DF = 0.5
MAX_FEATURES = 10000


def first_tokens(text, n_words=None):
    """The first ``n_words`` tokens of ``text`` (all of them when ``n_words`` is None or 0)."""
    tokens = tokenize(text)
    return tokens[:n_words] if n_words else tokens


def make_vectorizer(max_df=MAX_DF, min_df=1, max_features=MAX_FEATURES, sublinear_tf=True, n_words=N_WORDS):
    """The unfitted ``TfidfVectorizer`` of ``build_vsm`` (float32, l2-normalised rows, smoothed idf).

    Its tokenizer keeps the first ``n_words`` tokens of a text (None or 0: all).
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    tokenizer = partial(first_tokens, n_words=n_words) if n_words else tokenize
    return TfidfVectorizer(tokenizer=tokenizer, lowercase=False, token_pattern=None, max_df=max_df,
                           min_df=min_df, max_features=max_features, sublinear_tf=sublinear_tf,
                           norm="l2", use_idf=True, smooth_idf=True, dtype=np.float32)


def build_vsm(layout, ds, sets=("train", "val", "test"), max_df=MAX_DF, min_df=1, max_features=MAX_FEATURES,
              sublinear_tf=True, n_words=N_WORDS, suffix=SUFFIX):
    """Write the tf-idf matrix of each split of ``ds``; return ``{set: path}`` (a ``FeatureFiles``).

    Parameters (defaults: the seed's ``load_vsm.py``):

    - ``n_words`` (300): only the first ``n_words`` tokens of each text count (None or 0: all of
      them, the choice of tartarus before it followed the seed);
    - ``max_df`` (0.5): terms in more than this fraction (float) or number (int) of the train
      documents are dropped (earlier tartarus default 0.9); ``min_df`` (1): terms in fewer train
      documents are dropped;
    - ``max_features`` (10000; None or 0: all, the earlier default): keep the most frequent terms
      of the train split;
    - ``sublinear_tf`` (True): term frequency ``1 + log(tf)`` instead of ``tf``.

    The vectorizer is fitted on the train split whatever ``sets`` asks for. Each split in ``sets``
    is written as

    - ``layout.x(set, suffix, ds, sparse=True)``: CSR float32, shape ``(n_items_of_split, V)``,
      rows l2-normalised, rows in the order of ``layout.items_index(set, ds)``;
    - ``layout.items_index(set, ds, suffix)``: the ids of the rows;

    and once ``layout.vocabulary(suffix, ds)`` (``term<TAB>column<TAB>idf``, one line per column, in
    column order) and ``layout.text_params(suffix, ds)`` (JSON of every parameter, the tokenizer
    version and the shapes), written last. All writes are atomic. A parameter set that leaves no
    term (say ``max_df`` below ``min_df`` on a small train split) is a ConfigError.
    """
    sets = check_sets(sets)
    if n_words is not None:
        n_words = check_int("n_words", n_words, minimum=0) or None  # 0: every word
    vectorizer = make_vectorizer(max_df, min_df, max_features or None, sublinear_tf, n_words)
    train_ids, train_texts = read_texts(layout, ds, "train")
    if not train_ids:
        raise ConfigError(f"{layout.items_index('train', ds)} lists no item: nothing to fit tf-idf on")
    try:
        x_train = vectorizer.fit_transform(train_texts)
    except ValueError as exc:  # no term left, or max_df < min_df; sklearn's parameter errors too
        raise ConfigError(f"tf-idf of {ds} (max_df={max_df!r}, min_df={min_df!r}, "
                          f"max_features={max_features!r}) on {len(train_ids)} train texts: {exc}") from None

    out = FeatureFiles(ds, suffix)
    for set_ in sets:
        if set_ == "train":
            ids, x = train_ids, x_train
        else:
            ids, texts = read_texts(layout, ds, set_)
            x = vectorizer.transform(texts)
        x = x.tocsr().astype(np.float32)
        x.sort_indices()
        path = layout.x(set_, suffix, ds, sparse=True)
        fileio.save_sparse(path, x)
        fileio.write_lines(layout.items_index(set_, ds, suffix), ids)
        out[set_] = path
        out.index[set_] = layout.items_index(set_, ds, suffix)
        out.shapes[set_] = x.shape

    terms = vectorizer.get_feature_names_out()
    out.vocabulary = layout.vocabulary(suffix, ds)
    fileio.write_tsv(out.vocabulary, ((t, j, f"{idf:.9g}") for j, (t, idf) in enumerate(zip(terms, vectorizer.idf_))))
    out.params = layout.text_params(suffix, ds)
    fileio.write_json(out.params, _params(vectorizer, ds, suffix, out))
    return out


def _params(vectorizer, ds, suffix, out):
    import sklearn
    keys = ("max_df", "min_df", "max_features", "sublinear_tf", "norm", "use_idf", "smooth_idf",
            "ngram_range", "lowercase")
    vp = vectorizer.get_params()
    n_words = vectorizer.tokenizer.keywords["n_words"] if isinstance(vectorizer.tokenizer, partial) else None
    return {
        "stage": "vsm", "dataset": ds, "suffix": suffix, "fit_on": "train",
        "vectorizer": "sklearn.feature_extraction.text.TfidfVectorizer", "n_words": n_words,
        **{k: list(vp[k]) if isinstance(vp[k], tuple) else vp[k] for k in keys},
        "dtype": "float32", "format": "csr",
        "tokenizer": "tartarus.text.tokenize", "tokenizer_version": TOKENIZER_VERSION,
        "vocabulary_size": len(vectorizer.vocabulary_),
        "shapes": {s: list(shape) for s, shape in out.shapes.items()},
        "sklearn_version": sklearn.__version__,
    }
