"""tf-idf vectors of a dataset's texts (the seed's ``load_vsm.py``), one sparse matrix per split.

The vectorizer is scikit-learn's ``TfidfVectorizer`` with ``tartarus.text.tokenize`` as its
tokenizer, fitted on the train split only (its vocabulary, document frequencies and idf come from
the train texts), then applied to every split: a word seen only in val or test has no column.
"""

from __future__ import annotations

import numpy as np

from .. import fileio
from ..errors import ConfigError
from .corpus import FeatureFiles, check_sets, read_texts
from .tokenize import TOKENIZER_VERSION, tokenize

__all__ = ["build_vsm", "make_vectorizer"]

SUFFIX = "bow"


def make_vectorizer(max_df=0.9, min_df=1, max_features=None, sublinear_tf=True):
    """The unfitted ``TfidfVectorizer`` of ``build_vsm`` (float32, l2-normalised rows, smoothed idf)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    return TfidfVectorizer(tokenizer=tokenize, lowercase=False, token_pattern=None, max_df=max_df,
                           min_df=min_df, max_features=max_features, sublinear_tf=sublinear_tf,
                           norm="l2", use_idf=True, smooth_idf=True, dtype=np.float32)


def build_vsm(layout, ds, sets=("train", "val", "test"), max_df=0.9, min_df=1, max_features=None,
              sublinear_tf=True, suffix=SUFFIX):
    """Write the tf-idf matrix of each split of ``ds``; return ``{set: path}`` (a ``FeatureFiles``).

    Parameters (the seed's defaults):

    - ``max_df`` (0.9): terms in more than this fraction (float) or number (int) of the train
      documents are dropped; ``min_df`` (1): terms in fewer train documents are dropped;
    - ``max_features`` (None: all): keep the most frequent terms of the train split;
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
    vectorizer = make_vectorizer(max_df, min_df, max_features, sublinear_tf)
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
    return {
        "stage": "vsm", "dataset": ds, "suffix": suffix, "fit_on": "train",
        "vectorizer": "sklearn.feature_extraction.text.TfidfVectorizer",
        **{k: list(vp[k]) if isinstance(vp[k], tuple) else vp[k] for k in keys},
        "dtype": "float32", "format": "csr",
        "tokenizer": "tartarus.text.tokenize", "tokenizer_version": TOKENIZER_VERSION,
        "vocabulary_size": len(vectorizer.vocabulary_),
        "shapes": {s: list(shape) for s, shape in out.shapes.items()},
        "sklearn_version": sklearn.__version__,
    }
