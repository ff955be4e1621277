"""Token-index sequences and word2vec embedding weights (the seed's ``load_w2v.py``).

Each text becomes a fixed-length row of word indices for an embedding layer:

- index 0 is padding (its embedding row is all zeros), index 1 the unknown word (a word of val or
  test not in the train vocabulary, or one rarer than ``min_count``); neither is ever a real word;
- the words of the vocabulary get 2, 3, ... in vocabulary order: descending frequency on the train
  split, ties broken by first occurrence in the train texts (items-index order);
- a text longer than ``sequence_length`` tokens keeps its first ``sequence_length``; a shorter one
  is padded with 0 at the end.

The embedding matrix has one row per index: row 0 zeros, row 1 the mean of the word rows (an
unknown word is embedded as an average word, not as noise), rows 2.. the word vectors, either
trained here with gensim's word2vec on the train texts or taken from pretrained vectors.

Training defaults as the seed's ``load_w2v.py``: CBOW (gensim's default model), 300 dimensions,
window 10, ``min_count`` 1, ``sample`` 1e-3, gensim's default 5 epochs, one sentence per line of
each train text (a context window never crosses a line end), and every trained word vector scaled
to unit length (the seed called ``init_sims(replace=True)`` before reading the vectors). Earlier
tartarus choices stay as options: ``skipgram=True``, ``n_epochs=20``, ``sentences="texts"`` (one
sentence per whole text), ``unit_vectors=False``. Differences that remain: the seed gave index 0 to
its most frequent token and mapped unknown words to it; here 0 is padding and 1 the unknown word.
"""

from __future__ import annotations

import gzip
import unicodedata
from collections import Counter
from pathlib import Path

import numpy as np

from .. import fileio
from ..checks import check_choice, check_int
from ..errors import ConfigError, DataMismatch, MissingInput
from .corpus import FeatureFiles, check_sets, read_texts
from .tokenize import TOKENIZER_VERSION, tokenize

__all__ = ["build_w2v", "build_vocabulary", "to_sequences", "train_word2vec", "load_pretrained",
           "PAD", "UNK", "FIRST_WORD"]

SUFFIX = "w2v"
EPOCHS = 5  # gensim's default, which the seed kept
SENTENCES = ("lines", "texts")
PAD, UNK, FIRST_WORD = 0, 1, 2
PAD_TERM, UNK_TERM = "<pad>", "<unk>"  # names in the vocabulary file; the tokenizer never makes them


def build_vocabulary(token_lists, min_count=1):
    """``[(word, count), ...]`` of the words seen at least ``min_count`` times in ``token_lists``.

    Ordered by descending count, ties by first occurrence; word ``k`` of the list gets index
    ``FIRST_WORD + k`` in the sequences.
    """
    counts = Counter()
    for tokens in token_lists:
        counts.update(tokens)
    # Counter keeps first-insertion order, and sorted() is stable: ties stay in first-occurrence order
    return sorted(((w, c) for w, c in counts.items() if c >= min_count), key=lambda wc: -wc[1])


def to_sequences(token_lists, word_index, sequence_length):
    """int32 array ``(len(token_lists), sequence_length)`` of word indices.

    ``word_index`` maps a word to its index (>= 2); other words become ``UNK`` (1). Rows are cut
    after ``sequence_length`` tokens and padded with ``PAD`` (0) at the end.
    """
    out = np.full((len(token_lists), sequence_length), PAD, dtype=np.int32)
    for row, tokens in zip(out, token_lists):
        ids = [word_index.get(t, UNK) for t in tokens[:sequence_length]]
        row[:len(ids)] = ids
    return out


def train_word2vec(token_lists, embedding_dim=300, min_count=1, window=10, n_epochs=EPOCHS, seed=0, n_jobs=1,
                   skipgram=False):
    """A gensim 4 ``Word2Vec`` trained on ``token_lists`` (the train sentences), CBOW unless ``skipgram``.

    ``Word2Vec(sentences=token_lists, vector_size=embedding_dim, window=window, min_count=min_count,
    sg=int(skipgram), sample=1e-3, seed=seed, workers=n_jobs, epochs=n_epochs)``, other settings
    gensim's defaults (negative sampling 5). With ``n_jobs=1`` (worker threads) the result depends
    only on the inputs and the seed; more are faster but not reproducible.
    """
    from gensim.models import Word2Vec
    return Word2Vec(sentences=token_lists, vector_size=embedding_dim, window=window, min_count=min_count,
                    sg=int(bool(skipgram)), sample=1e-3, seed=seed, workers=n_jobs, epochs=n_epochs)


def train_sentences(texts, sentences="lines"):
    """Token lists word2vec trains on: one per non-empty line of each text (``"lines"``, the
    seed's), or one per whole text (``"texts"``)."""
    check_choice("sentences", sentences, SENTENCES)
    if sentences == "texts":
        return [tokenize(t) for t in texts]
    out = []
    for text in texts:
        out.extend(tokens for tokens in (tokenize(line) for line in text.replace("\r\n", "\n").replace("\r", "\n")
                                         .split("\n")) if tokens)
    return out


KV_CONVERT = ("python -c \"from gensim.models import KeyedVectors as K; "
              "K.load({path!r}).save_word2vec_format({out!r}, binary=True)\"")
"""How a user turns a gensim ``.kv`` file into word2vec binary, unpickling it by their own choice."""


def load_pretrained(path):
    """Pretrained word vectors (gensim ``KeyedVectors``) from ``path``, in a word2vec format by its name:

    - ``*.bin`` or ``*.bin.gz``: word2vec binary format (e.g. GoogleNews-vectors-negative300.bin);
    - anything else (``.txt``, ``.vec``, ``.gz``, ...): word2vec text format, with its
      ``count dim`` header line, or without one (GloVe's text files).

    Both formats are plain numbers and words: nothing is unpickled. gensim's own ``*.kv`` files
    (``KeyedVectors.save``) are read with Python's pickle, which can run code, so they are refused
    with a ConfigError that gives the one-line conversion to ``.bin`` (``KV_CONVERT``).

    Raises MissingInput when absent, DataMismatch when the file does not parse.
    """
    path = Path(path)
    name = path.name.lower()
    if name.endswith(".kv"):
        out = str(path.with_suffix(".bin"))
        raise ConfigError(f"{path}: gensim's .kv files are pickles, which tartarus never loads; "
                          f"give the vectors in word2vec binary (.bin) or text (.txt, .vec) format, e.g. "
                          f"convert a file you trust with: {KV_CONVERT.format(path=str(path), out=out)}")
    if not path.is_file():
        raise MissingInput(path, what="pretrained word vectors")
    from gensim.models import KeyedVectors
    binary = name.endswith((".bin", ".bin.gz"))
    fmt = "binary" if binary else "text"
    try:
        no_header = not binary and not _has_header(path)
        return KeyedVectors.load_word2vec_format(str(path), binary=binary, no_header=no_header,
                                                 unicode_errors="replace")
    except (ValueError, EOFError, OSError, IndexError, KeyError) as exc:
        raise DataMismatch(f"{path}: not readable as word2vec {fmt} vectors ({type(exc).__name__}: {exc})") from None


def _has_header(path):
    """True when the first line of a word2vec text file is ``count dim``."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as f:
        first = f.readline().split()
    return len(first) == 2 and all(part.isdigit() for part in first)


def _pretrained_rows(kv, words, seed):
    """Rows of ``words`` from ``kv`` (exact key, else a case-folded NFC match), and which were absent.

    Absent words get uniform random rows from ``default_rng(seed)`` in vocabulary order, with the
    variance of the pretrained values (Kim 2014): small, on the scale of the real vectors.
    """
    dim = kv.vector_size
    rows = np.empty((len(words), dim), dtype=np.float32)
    absent = []
    folded = None
    for k, word in enumerate(words):
        i = kv.key_to_index.get(word)
        if i is None:
            if folded is None:  # built once, only when needed: first (most frequent) key wins
                folded = {}
                for j, key in enumerate(kv.index_to_key):
                    folded.setdefault(unicodedata.normalize("NFC", str(key).casefold()), j)
            i = folded.get(word)
        if i is None:
            absent.append(k)
        else:
            rows[k] = kv.vectors[i]
    if absent:
        sigma = float(np.std(kv.vectors[:10000])) if len(kv) else 0.0
        a = np.sqrt(3.0) * (sigma if sigma > 0 else 1.0 / dim)
        rows[absent] = np.random.default_rng(seed).uniform(-a, a, size=(len(absent), dim))
    return rows, absent


def build_w2v(layout, ds, sets=("train", "val", "test"), sequence_length=500, embedding_dim=300, min_count=1,
              window=10, n_epochs=EPOCHS, seed=0, pretrained=None, n_jobs=1, suffix=SUFFIX, skipgram=False,
              sentences="lines", unit_vectors=True):
    """Write the token-index sequences of each split of ``ds`` and the embedding weights.

    Returns ``{set: path of X}`` (a ``FeatureFiles``). Written (all atomically):

    - ``layout.x(set, suffix, ds)``: int32 ``(n_items_of_split, sequence_length)``, rows in the order
      of ``layout.items_index(set, ds)``, with ``layout.items_index(set, ds, suffix)`` beside it;
    - ``layout.embedding_weights(suffix, ds)``: float32 ``(vocab_size + 2, embedding_dim)``; row 0
      zeros (padding), row 1 the mean of rows 2.. (unknown word), row ``2 + k`` the vector of the
      ``k``-th vocabulary word;
    - ``layout.vocabulary(suffix, ds)``: ``term<TAB>index<TAB>count`` for every row of the matrix,
      ``<pad>`` and ``<unk>`` first (the count of ``<unk>``: train tokens rarer than ``min_count``),
      then the words with their train counts;
    - ``layout.text_params(suffix, ds)``: every parameter, the vocabulary size, the share of tokens
      mapped to unknown and the number of truncated texts per split (written last).

    The vocabulary always comes from the train split (words with at least ``min_count``
    occurrences), whatever ``sets`` asks for. Word vectors:

    - ``pretrained=None``: ``train_word2vec`` on the train texts (CBOW, or skip-gram with
      ``skipgram``; ``window``, ``n_epochs`` (5), ``seed``, ``n_jobs`` (threads); with ``n_jobs=1`` (default)
      the same inputs and seed give the same matrix), on the sentences ``train_sentences(texts,
      sentences)`` (``"lines"``, default, or ``"texts"``); with ``unit_vectors`` (default) each
      trained word row is scaled to unit l2 norm, as the seed's vectors were;
    - ``pretrained=path``: vectors read by ``load_pretrained`` (word2vec text or ``.bin``; gensim's
      pickled ``.kv`` is refused, see there). A vocabulary word missing from them (also after case folding) gets a
      small uniform random row drawn from ``seed``. Their dimension must equal ``embedding_dim``, else
      ConfigError naming both; ``window`` and ``n_epochs`` are then unused.
    """
    sets = check_sets(sets)
    sequence_length = check_int("sequence_length", sequence_length)
    embedding_dim = check_int("embedding_dim", embedding_dim)
    min_count = check_int("min_count", min_count)
    window = check_int("window", window)
    n_epochs = check_int("n_epochs", n_epochs)
    n_jobs = check_int("n_jobs", n_jobs)  # gensim's worker threads: a count, no joblib -1
    check_choice("sentences", sentences, SENTENCES)
    seed = check_int("seed", seed, minimum=0)

    kv = None
    if pretrained is not None:  # checked before any training: a wrong file fails fast
        kv = load_pretrained(pretrained)
        if kv.vector_size != embedding_dim:
            raise ConfigError(f"pretrained vectors {pretrained} have dimension {kv.vector_size}, "
                              f"but embedding_dim is {embedding_dim}")

    train_ids, train_texts = read_texts(layout, ds, "train")
    train_tokens = [tokenize(t) for t in train_texts]
    vocab = build_vocabulary(train_tokens, min_count)
    if not vocab:
        raise ConfigError(f"no word of the {len(train_ids)} train texts of {ds} occurs at least "
                          f"min_count={min_count} times: the vocabulary is empty")
    words = [w for w, _ in vocab]

    if kv is None:
        corpus = train_tokens if sentences == "texts" else train_sentences(train_texts, sentences)
        model = train_word2vec(corpus, embedding_dim, min_count, window, n_epochs, seed, n_jobs, skipgram)
        word_rows = np.stack([model.wv[w] for w in words]).astype(np.float32)
        if unit_vectors:
            word_rows /= np.maximum(np.linalg.norm(word_rows, axis=1, keepdims=True), np.float32(1e-12))
        extra = {"sg": int(bool(skipgram)), "negative": model.negative, "hs": model.hs, "sample": model.sample,
                 "alpha": model.alpha, "min_alpha": model.min_alpha, "sentences": sentences,
                 "n_sentences": len(corpus), "unit_vectors": bool(unit_vectors)}
    else:
        word_rows, absent = _pretrained_rows(kv, words, seed)
        extra = {"pretrained_vocabulary_size": len(kv), "n_words_found": len(words) - len(absent),
                 "n_words_random": len(absent)}
    weights = np.zeros((len(words) + FIRST_WORD, embedding_dim), dtype=np.float32)
    weights[FIRST_WORD:] = word_rows
    weights[UNK] = word_rows.mean(axis=0)

    word_index = {w: FIRST_WORD + k for k, w in enumerate(words)}
    out = FeatureFiles(ds, suffix)
    stats = {}
    for set_ in sets:
        if set_ == "train":
            ids, tokens = train_ids, train_tokens
        else:
            ids, texts = read_texts(layout, ds, set_)
            tokens = [tokenize(t) for t in texts]
        x = to_sequences(tokens, word_index, sequence_length)
        n_tokens = sum(min(len(t), sequence_length) for t in tokens)
        stats[set_] = {"n_items": len(ids),
                       "unknown_share": float(np.sum(x == UNK) / n_tokens) if n_tokens else 0.0,
                       "n_truncated": sum(len(t) > sequence_length for t in tokens)}
        path = layout.x(set_, suffix, ds)
        fileio.save_npy(path, x)
        fileio.write_lines(layout.items_index(set_, ds, suffix), ids)
        out[set_] = path
        out.index[set_] = layout.items_index(set_, ds, suffix)
        out.shapes[set_] = x.shape

    out.embedding = layout.embedding_weights(suffix, ds)
    fileio.save_npy(out.embedding, weights)
    n_rare = sum(len(t) for t in train_tokens) - sum(c for _, c in vocab)
    out.vocabulary = layout.vocabulary(suffix, ds)
    fileio.write_tsv(out.vocabulary, [(PAD_TERM, PAD, 0), (UNK_TERM, UNK, n_rare)]
                     + [(w, FIRST_WORD + k, c) for k, (w, c) in enumerate(vocab)])
    import gensim
    out.params = layout.text_params(suffix, ds)
    fileio.write_json(out.params, {
        "stage": "w2v", "dataset": ds, "suffix": suffix, "fit_on": "train",
        "sequence_length": sequence_length, "embedding_dim": embedding_dim, "min_count": min_count,
        "window": window, "n_epochs": n_epochs, "seed": seed, "n_jobs": n_jobs,
        "pretrained": str(pretrained) if pretrained is not None else None, **extra,
        "vocabulary_size": len(words), "embedding_shape": list(weights.shape),
        "padding_index": PAD, "unknown_index": UNK, "unknown_row": "mean of the word rows",
        "truncation": "end (first sequence_length tokens kept)", "padding": "end",
        "dtype": "int32", "tokenizer": "tartarus.text.tokenize", "tokenizer_version": TOKENIZER_VERSION,
        "shapes": {s: list(shape) for s, shape in out.shapes.items()}, "splits": stats,
        "gensim_version": gensim.__version__,
    })
    return out
