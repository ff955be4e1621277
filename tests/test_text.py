"""Text features: tokenizer, corpus reading, tf-idf, word2vec sequences and weights, doc2vec targets."""

import json
import shutil
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from tartarus import fileio
from tartarus.datasets.dummy import generate_dummy
from tartarus.errors import ConfigError, DataMismatch, MissingInput
from tartarus.layout import SETS, DataLayout
from tartarus.text import build_d2v_targets, build_vsm, build_w2v, read_texts, tags_from_matrix, tokenize
from tartarus.text.w2v import load_pretrained
from tartarus.text.doc2vec import read_tags

SUPER = Path(__file__).resolve().parents[1].parent / "shared" / "super"
NAVIDAD = SUPER / "text" / "navidad_caliente.txt"


# ------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def dummy_source(tmp_path_factory):
    root = tmp_path_factory.mktemp("dummy_source")
    generate_dummy(root)
    return root


@pytest.fixture
def dummy(dummy_source, tmp_path):
    """A private copy of the dummy dataset's text side (index, splits, text)."""
    root = tmp_path / "dummy"
    for part in ("index", "splits", "text"):
        shutil.copytree(dummy_source / part, root / part)
    return DataLayout(root)


@pytest.fixture
def super_layout(tmp_path):
    """A private, writable copy of the real SUPER dataset (skips when ../shared/super is absent)."""
    if not SUPER.is_dir():
        pytest.skip(f"real SUPER data not found at {SUPER}")
    root = tmp_path / "super"
    shutil.copytree(SUPER, root, ignore=shutil.ignore_patterns("audio", "SOURCE.md"))
    for p in root.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    return DataLayout(root)


def write_corpus(root, splits, ds="T"):
    """A minimal text dataset: ``splits = {set: {id: text}}``."""
    layout = DataLayout(root)
    rows = []
    for set_, items in splits.items():
        fileio.write_lines(layout.items_index(set_, ds), items)
        for item, text in items.items():
            fileio.write_text(layout.text_dir / f"{item}.txt", text)
            rows.append((item, f"{item}.txt"))
    fileio.write_tsv(layout.text_index(ds), rows)
    return layout


SMALL = {
    "train": {"a": "sol sol sol luna", "b": "luna mar", "c": "mar sol luna canción"},
    "val": {"d": "sol playa"},
    "test": {"e": "luna luna solamente", "f": "nada"},
}


def vocabulary(layout, suffix, ds):
    return [(t, int(j), v) for t, j, v in fileio.read_tsv(layout.vocabulary(suffix, ds), ncols=3)]


# ------------------------------------------------------------------------------ tokenizer
def test_tokenizer_keeps_accents_and_lowercases():
    assert tokenize("Canción del CORAZÓN, Ñandú y tradição") == ["canción", "del", "corazón", "ñandú", "y", "tradição"]
    assert tokenize("pico\u0301n") == ["picón"]  # decomposed accent: NFC makes one word
    assert tokenize("Straße") == ["strasse"]


def test_tokenizer_whitespace_bom_and_line_ends():
    text = "\ufeffuno\rdos\r\ntres\ncuatro\xa0cinco\u202fseis\tsiete"
    assert tokenize(text) == ["uno", "dos", "tres", "cuatro", "cinco", "seis", "siete"]
    assert tokenize(text.encode("utf-8")) == tokenize(text)


def test_tokenizer_punctuation_apostrophes_numbers():
    assert tokenize("¡¿Qué?! ... — «hola» (sí) 24, 3.5 mp3 00s :-)") == ["qué", "hola", "sí", "24", "3", "5", "mp3", "00s"]
    assert tokenize("don't ’cause pa'l rock’n’roll 'quoted' l'amour") == [
        "don't", "cause", "pa'l", "rock'n'roll", "quoted", "l'amour"]
    assert tokenize("drum-machine snake_case can\xadción") == ["drum", "machine", "snake", "case", "canción"]
    assert tokenize("!!! ... ¿? -- 😀") == []
    assert tokenize("") == []


def test_tokenizer_on_real_file_bytes():
    if not NAVIDAD.is_file():
        pytest.skip(f"real SUPER data not found at {SUPER}")
    data = NAVIDAD.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and b"\r" in data and b"\xc2\xa0" in data  # the file is what we test
    tokens = tokenize(data)
    assert tokens[:4] == ["llega", "la", "navidad", "caliente"]
    assert {"días", "picón", "aquí", "24"} <= set(tokens)
    for t in tokens:
        assert not any(c in t for c in "\r\n\ufeff\xa0\u202f \t.,"), repr(t)
        assert t == unicodedata.normalize("NFC", t.casefold())


# --------------------------------------------------------------------------------- corpus
def test_read_texts_real_super(super_layout):
    ids, texts = read_texts(super_layout, "SUPER", "test")
    assert ids == ["S7", "S8", "S9"]
    assert texts[0].startswith("Llega la navidad")  # BOM removed
    assert "\r" in texts[0]  # line ends are the tokenizer's business


def test_read_texts_errors(dummy):
    ids = fileio.read_lines(dummy.items_index("test", "DUMMY"))
    gone = dummy.text_dir / f"{ids[1]}.txt"
    gone.unlink()
    with pytest.raises(MissingInput) as err:
        read_texts(dummy, "DUMMY", "test")
    assert ids[1] in str(err.value) and str(gone) in str(err.value)
    read_texts(dummy, "DUMMY", "train")  # the other splits are fine

    rows = [r for r in fileio.read_tsv(dummy.text_index("DUMMY")) if r[0] != ids[2]]
    fileio.write_tsv(dummy.text_index("DUMMY"), rows)
    with pytest.raises(DataMismatch, match=ids[2]):
        read_texts(dummy, "DUMMY", "test")

    dummy.text_index("DUMMY").unlink()
    with pytest.raises(MissingInput, match="index_text_DUMMY.tsv"):
        read_texts(dummy, "DUMMY", "train")


def test_read_texts_invalid_utf8(tmp_path):
    layout = write_corpus(tmp_path, SMALL)
    (layout.text_dir / "b.txt").write_bytes(b"caf\xe9")
    with pytest.raises(DataMismatch, match="b.txt"):
        read_texts(layout, "T", "train")


# ------------------------------------------------------------------------------------ vsm
def test_vsm_dummy_rows_ids_and_vocabulary(dummy):
    test_ids = fileio.read_lines(dummy.items_index("test", "DUMMY"))
    train_ids = fileio.read_lines(dummy.items_index("train", "DUMMY"))
    with open(dummy.text_dir / f"{test_ids[0]}.txt", "a", encoding="utf-8") as f:
        f.write(" Zanzíbarqué\n")
    with open(dummy.text_dir / f"{train_ids[0]}.txt", "a", encoding="utf-8") as f:
        f.write(" Xilófonoúnico\n")
    out = build_vsm(dummy, "DUMMY", max_df=0.9, max_features=None, n_words=None)  # tartarus's earlier choices
    vocab = vocabulary(dummy, "bow", "DUMMY")
    terms = [t for t, _, _ in vocab]
    assert [j for _, j, _ in vocab] == list(range(len(vocab)))
    assert "xilófonoúnico" in terms and "zanzíbarqué" not in terms  # fitted on train only
    for set_ in SETS:
        x = fileio.load_sparse(out[set_])
        ids = fileio.read_lines(dummy.items_index(set_, "DUMMY"))
        assert x.shape == (len(ids), len(vocab)) and x.dtype == np.float32
        assert fileio.read_lines(dummy.items_index(set_, "DUMMY", "bow")) == ids
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1))).ravel()
        assert np.allclose(norms[norms > 0], 1.0, atol=1e-5)
    # the vocabulary file's idf is the train split's smoothed idf of each column
    texts = read_texts(dummy, "DUMMY", "train")[1]
    docs = [set(tokenize(t)) for t in texts]
    n = len(docs)
    for t, _, idf in vocab[:20]:
        df = sum(t in d for d in docs)
        assert df / n <= 0.9
        assert float(idf) == pytest.approx(np.log((1 + n) / (1 + df)) + 1, rel=1e-6)
    params = json.loads(dummy.text_params("bow", "DUMMY").read_text())
    assert params["max_df"] == 0.9 and params["min_df"] == 1 and params["sublinear_tf"] is True
    assert params["max_features"] is None and params["n_words"] is None and params["vocabulary_size"] == len(vocab)
    assert params["fit_on"] == "train" and params["shapes"]["test"] == [len(test_ids), len(vocab)]


def test_vsm_sublinear_tf_and_max_df(tmp_path):
    layout = write_corpus(tmp_path, SMALL)
    build_vsm(layout, "T", max_df=0.9)  # max_df 0.9: "luna" (in all 3 train texts) is dropped
    terms = [t for t, _, _ in vocabulary(layout, "bow", "T")]
    assert terms == ["canción", "mar", "sol"]
    build_vsm(layout, "T", max_df=1.0)
    vocab = vocabulary(layout, "bow", "T")
    col = {t: j for t, j, _ in vocab}
    idf = np.array([float(v) for _, _, v in vocab])
    assert set(col) == {"canción", "luna", "mar", "sol"}
    x = fileio.load_sparse(layout.x("train", "bow", "T", sparse=True)).toarray()
    # text "a" = "sol sol sol luna": weights (1 + ln 3) idf(sol) and 1 idf(luna), l2-normalised
    want = np.zeros(len(col))
    want[col["sol"]], want[col["luna"]] = (1 + np.log(3)) * idf[col["sol"]], idf[col["luna"]]
    assert np.allclose(x[0], want / np.linalg.norm(want), atol=1e-6)
    build_vsm(layout, "T", max_df=1.0, sublinear_tf=False)
    x = fileio.load_sparse(layout.x("train", "bow", "T", sparse=True)).toarray()
    want[col["sol"]] = 3 * idf[col["sol"]]
    assert np.allclose(x[0], want / np.linalg.norm(want), atol=1e-6)
    test = fileio.load_sparse(layout.x("test", "bow", "T", sparse=True))
    assert test.shape == (2, 4) and test[1].nnz == 0  # "nada" and "solamente" are not train words
    with pytest.raises(ConfigError, match="max_df"):
        build_vsm(layout, "T", max_df=1, min_df=2)


def test_vsm_defaults_are_the_seeds(tmp_path):
    """load_vsm.py: the first 300 words, TfidfVectorizer(sublinear_tf=True, max_df=0.5, max_features=10000)."""
    import inspect
    from sklearn.feature_extraction.text import TfidfVectorizer
    from tartarus.config.schema import DatasetEntry
    sig = inspect.signature(build_vsm).parameters
    assert (sig["max_df"].default, sig["max_features"].default, sig["n_words"].default) == (0.5, 10000, 300)
    entry = DatasetEntry(name="X")
    assert (entry.max_df, entry.max_features, entry.n_words, entry.min_df) == (0.5, 10000, 300, 1)
    # 4 train texts; word 301 onwards of the first text does not count
    texts = {"a": " ".join(["sol"] * 300 + ["tardío"] * 5), "b": "sol luna", "c": "luna mar", "d": "mar río"}
    layout = write_corpus(tmp_path, {"train": texts, "val": {"e": "sol"}, "test": {"f": "tardío"}})
    build_vsm(layout, "T")
    terms = [t for t, _, _ in vocabulary(layout, "bow", "T")]
    # df: sol 2, luna 2, mar 2 (of 4: kept at max_df 0.5), río 1; "tardío" (words 301-305) is cut
    assert terms == ["luna", "mar", "río", "sol"]
    want = TfidfVectorizer(sublinear_tf=True, max_df=0.5, max_features=10000, analyzer="word")
    ref = want.fit_transform([" ".join(t.split()[:300]) for t in texts.values()]).toarray()
    x = fileio.load_sparse(layout.x("train", "bow", "T", sparse=True)).toarray()
    assert list(want.get_feature_names_out()) == terms and np.allclose(x, ref, atol=1e-6)
    assert fileio.load_sparse(layout.x("test", "bow", "T", sparse=True)).nnz == 0
    params = json.loads(layout.text_params("bow", "T").read_text())
    assert (params["max_df"], params["max_features"], params["n_words"]) == (0.5, 10000, 300)
    build_vsm(layout, "T", max_df=1.0, n_words=0)  # every word counts: "tardío" is a term
    assert "tardío" in [t for t, _, _ in vocabulary(layout, "bow", "T")]
    build_vsm(layout, "T", max_df=0.25)  # more than one text of four: dropped
    assert [t for t, _, _ in vocabulary(layout, "bow", "T")] == ["río"]
    with pytest.raises(ConfigError, match="n_words"):
        build_vsm(layout, "T", n_words=-1)


# ------------------------------------------------------------------------------------ w2v
W2V_FAST = dict(embedding_dim=16, n_epochs=3, window=3)


def test_w2v_defaults_are_the_seeds(tmp_path):
    """load_w2v.py: gensim Word2Vec with its defaults (CBOW, 5 epochs), size 300, window 10,
    min_count 1, sample 1e-3, on the train texts' lines; vectors read after init_sims(replace=True)."""
    import inspect
    from gensim.models import Word2Vec
    from tartarus.config.schema import DatasetEntry
    from tartarus.text.w2v import train_sentences
    sig = inspect.signature(build_w2v).parameters
    assert (sig["n_epochs"].default, sig["skipgram"].default, sig["sentences"].default, sig["unit_vectors"].default,
            sig["embedding_dim"].default, sig["window"].default, sig["min_count"].default,
            sig["sequence_length"].default) == (5, False, "lines", True, 300, 10, 1, 500)
    entry = DatasetEntry(name="X")
    assert (entry.w2v_epochs, entry.w2v_skipgram, entry.sequence_length, entry.embedding_dim) == (5, False, 500, 300)
    texts = {"a": "sol luna mar\nrío sol\r\nluna", "b": "mar sol\rluna río mar", "c": "sol\n\nmar"}
    assert train_sentences(list(texts.values())) == [["sol", "luna", "mar"], ["río", "sol"], ["luna"], ["mar", "sol"],
                                                     ["luna", "río", "mar"], ["sol"], ["mar"]]
    assert train_sentences(["a b\nc"], "texts") == [["a", "b", "c"]]
    layout = write_corpus(tmp_path, {"train": texts, "val": {"d": "sol"}, "test": {"e": "luna"}})
    build_w2v(layout, "T", sequence_length=6, embedding_dim=8)
    params = json.loads(layout.text_params("w2v", "T").read_text())
    assert (params["sg"], params["n_epochs"], params["window"], params["sample"], params["sentences"],
            params["n_sentences"], params["unit_vectors"]) == (0, 5, 10, 0.001, "lines", 7, True)
    w = np.load(layout.embedding_weights("w2v", "T"))
    assert np.allclose(np.linalg.norm(w[2:], axis=1), 1.0, atol=1e-5)
    # the same as gensim's CBOW on those sentences, each row scaled to unit length
    ref = Word2Vec(train_sentences(list(texts.values())), vector_size=8, window=10, min_count=1, sample=1e-3,
                   seed=0, workers=1)
    words = [t for t, _, _ in vocabulary(layout, "w2v", "T")][2:]
    want = np.stack([ref.wv[t] / np.linalg.norm(ref.wv[t]) for t in words])
    assert ref.epochs == 5 and ref.sg == 0 and np.allclose(w[2:], want, atol=1e-6)
    # the earlier choices, as options
    build_w2v(layout, "T", sequence_length=6, embedding_dim=8, skipgram=True, n_epochs=20, sentences="texts",
              unit_vectors=False)
    params = json.loads(layout.text_params("w2v", "T").read_text())
    assert (params["sg"], params["n_epochs"], params["sentences"], params["n_sentences"]) == (1, 20, "texts", 3)
    assert not np.allclose(np.linalg.norm(np.load(layout.embedding_weights("w2v", "T"))[2:], axis=1), 1.0)
    with pytest.raises(ConfigError, match="sentences"):
        build_w2v(layout, "T", sentences="paragraphs")


def test_w2v_sequences_and_weights(dummy):
    out = build_w2v(dummy, "DUMMY", sequence_length=40, **W2V_FAST)
    vocab = vocabulary(dummy, "w2v", "DUMMY")
    assert vocab[0][:2] == ("<pad>", 0) and vocab[1][:2] == ("<unk>", 1)
    words = [t for t, _, _ in vocab]
    counts = [int(c) for _, _, c in vocab[2:]]
    assert counts == sorted(counts, reverse=True) and [j for _, j, _ in vocab] == list(range(len(vocab)))
    train_tokens = [tokenize(t) for t in read_texts(dummy, "DUMMY", "train")[1]]
    most = max(set(sum(train_tokens, [])), key=lambda w: sum(t.count(w) for t in train_tokens))
    assert words[2] == most or int(vocab[2][2]) == sum(t.count(most) for t in train_tokens)

    w = np.load(dummy.embedding_weights("w2v", "DUMMY"))
    assert w.shape == (len(vocab), 16) and w.dtype == np.float32
    assert not w[0].any() and np.allclose(w[1], w[2:].mean(axis=0), atol=1e-6)
    for set_ in SETS:
        x = np.load(out[set_])
        ids = fileio.read_lines(dummy.items_index(set_, "DUMMY"))
        assert x.shape == (len(ids), 40) and x.dtype == np.int32
        assert fileio.read_lines(dummy.items_index(set_, "DUMMY", "w2v")) == ids
        assert x.min() >= 0 and x.max() < len(vocab)
    x = np.load(out["train"])
    assert not (x == 1).any()  # min_count 1: every train word is known
    for row, tokens in zip(x, train_tokens):  # the row spells the first 40 tokens, then padding
        n = min(len(tokens), 40)
        assert [words[i] for i in row[:n]] == tokens[:n] and not row[n:].any()


def test_w2v_unknown_min_count_and_truncation(tmp_path):
    layout = write_corpus(tmp_path, SMALL)
    out = build_w2v(layout, "T", sequence_length=3, min_count=2, **W2V_FAST)
    words = [t for t, _, _ in vocabulary(layout, "w2v", "T")]
    assert words == ["<pad>", "<unk>", "sol", "luna", "mar"]  # sol 4, luna 3, mar 2 (canción once)
    assert np.load(out["train"]).tolist() == [[2, 2, 2], [3, 4, 0], [4, 2, 3]]
    assert np.load(out["test"]).tolist() == [[3, 3, 1], [1, 0, 0]]
    params = json.loads(layout.text_params("w2v", "T").read_text())
    assert params["splits"]["train"]["n_truncated"] == 2 and params["vocabulary_size"] == 3
    assert params["unknown_index"] == 1 and params["padding_index"] == 0


def test_w2v_reproducible_with_seed(tmp_path):
    layout = write_corpus(tmp_path, SMALL)
    build_w2v(layout, "T", sequence_length=8, **W2V_FAST)
    first = np.load(layout.embedding_weights("w2v", "T"))
    build_w2v(layout, "T", sequence_length=8, **W2V_FAST)
    assert np.array_equal(first, np.load(layout.embedding_weights("w2v", "T")))
    build_w2v(layout, "T", sequence_length=8, seed=1, **W2V_FAST)
    assert not np.array_equal(first, np.load(layout.embedding_weights("w2v", "T")))


def test_w2v_pretrained_vectors(tmp_path):
    from gensim.models import KeyedVectors
    layout = write_corpus(tmp_path / "data", SMALL)
    vec = {"sol": [1, 2, 3, 4, 5], "Luna": [0.5, 0, -0.5, 1, 2], "playa": [9, 9, 9, 9, 9]}
    path = tmp_path / "vectors.txt"
    path.write_text(f"{len(vec)} 5\n" + "".join(f"{w} {' '.join(map(str, v))}\n" for w, v in vec.items()),
                    encoding="utf-8")
    build_w2v(layout, "T", sequence_length=8, embedding_dim=5, pretrained=path)
    words = [t for t, _, _ in vocabulary(layout, "w2v", "T")]
    w = np.load(layout.embedding_weights("w2v", "T"))
    assert w.shape == (len(words), 5)
    assert np.allclose(w[words.index("sol")], vec["sol"])
    assert np.allclose(w[words.index("luna")], vec["Luna"])  # case-folded match
    for missing in ("mar", "canción"):  # train words without a pretrained vector: small random rows
        row = w[words.index(missing)]
        assert row.any() and np.abs(row).max() < 10
    assert not w[0].any()
    params = json.loads(layout.text_params("w2v", "T").read_text())
    assert params["n_words_found"] == 2 and params["n_words_random"] == 2 and params["pretrained"] == str(path)

    # the same vectors in word2vec binary format and in GloVe's header-less text give the same matrix
    kv = KeyedVectors.load_word2vec_format(str(path))
    kv.save_word2vec_format(str(tmp_path / "vectors.bin"), binary=True)
    (tmp_path / "glove.txt").write_text("".join(path.read_text(encoding="utf-8").splitlines(True)[1:]),
                                        encoding="utf-8")
    for other in ("vectors.bin", "glove.txt"):
        build_w2v(layout, "T", sequence_length=8, embedding_dim=5, pretrained=tmp_path / other)
        assert np.array_equal(np.load(layout.embedding_weights("w2v", "T")), w), other

    with pytest.raises(ConfigError, match=r"dimension 5.*embedding_dim is 7"):
        build_w2v(layout, "T", embedding_dim=7, pretrained=path)
    with pytest.raises(MissingInput, match="nope.txt"):
        build_w2v(layout, "T", embedding_dim=5, pretrained=tmp_path / "nope.txt")


def test_w2v_pretrained_kv_is_refused_with_a_conversion_that_works(tmp_path):
    # gensim's .kv files are pickles: refused before anything is read, with the user's own way out
    import shlex
    import subprocess
    import sys
    from gensim.models import KeyedVectors
    kv = KeyedVectors(vector_size=3)
    kv.add_vectors(["sol", "luna"], np.array([[1, 2, 3], [4, 5, 6]], dtype=np.float32))
    saved = tmp_path / "my vectors.kv"
    kv.save(str(saved))
    with pytest.raises(ConfigError, match=r"my vectors\.kv.*pickles.*save_word2vec_format") as err:
        build_w2v(DataLayout(tmp_path / "data"), "T", embedding_dim=3, pretrained=saved)
    command = shlex.split(str(err.value).split("convert a file you trust with: ", 1)[1])
    assert command[:2] == ["python", "-c"]
    subprocess.run([sys.executable, "-c", command[2]], check=True, cwd=tmp_path)
    back = load_pretrained(tmp_path / "my vectors.bin")
    assert back.index_to_key == ["sol", "luna"] and np.array_equal(back.vectors, kv.vectors)


# -------------------------------------------------------------------------------- doc2vec
def _cosines(y):
    u = y / np.linalg.norm(y, axis=1, keepdims=True)
    return u @ u.T


def test_d2v_targets_shapes_seed_and_similarity(dummy):
    out = build_d2v_targets(dummy, "DUMMY", dim=16)
    tags = read_tags(dummy.tags_index("DUMMY"))
    ys = {}
    for set_ in SETS:
        ids = fileio.read_lines(dummy.items_index(set_, "DUMMY"))
        y = np.load(dummy.y(set_, "d2v", 16, "DUMMY"))
        assert out[set_] == dummy.y(set_, "d2v", 16, "DUMMY")
        assert y.shape == (len(ids), 16) and y.dtype == np.float32
        assert np.allclose(np.linalg.norm(y, axis=1), 1, atol=1e-5)
        ys[set_] = (ids, y)
    params = json.loads(dummy.target_params("d2v", 16, "DUMMY").read_text())
    assert params["dm"] == 0 and params["seed"] == 0 and params["n_documents"] == 60

    # items with overlapping tags are closer than items with disjoint tags
    ids = sum((ys[s][0] for s in SETS), [])
    y = np.concatenate([ys[s][1] for s in SETS])
    cos = _cosines(y)
    similar, disjoint = [], []
    for i in range(len(ids)):
        for j in range(i + 1, len(ids)):
            a, b = set(tags[ids[i]]), set(tags[ids[j]])
            jac = len(a & b) / len(a | b)
            if jac >= 0.5:
                similar.append(cos[i, j])
            elif jac == 0:
                disjoint.append(cos[i, j])
    assert len(similar) > 10 and len(disjoint) > 10
    assert np.mean(similar) > np.mean(disjoint) + 0.2
    assert np.mean(similar) > 0 > np.mean(disjoint)  # centred: no direction shared by all targets

    build_d2v_targets(dummy, "DUMMY", dim=16)
    assert np.array_equal(np.load(dummy.y("test", "d2v", 16, "DUMMY")), ys["test"][1])
    build_d2v_targets(dummy, "DUMMY", dim=16, seed=3)
    assert not np.array_equal(np.load(dummy.y("test", "d2v", 16, "DUMMY")), ys["test"][1])


def test_d2v_tags_from_matrix_and_errors(dummy):
    matrix = np.array([[1, 0, 1], [0, 0, 0], [0, 2, 0]])
    assert tags_from_matrix(matrix, ["rock", "pop", "jazz"]) == [["rock", "jazz"], [], ["pop"]]
    import scipy.sparse as sp
    assert tags_from_matrix(sp.csr_matrix(matrix), ["rock", "pop", "jazz"]) == [["rock", "jazz"], [], ["pop"]]
    with pytest.raises(DataMismatch, match="3 columns but 2"):
        tags_from_matrix(matrix, ["rock", "pop"])

    # a dense item x tag matrix of the dummy tags, back to documents
    tags = read_tags(dummy.tags_index("DUMMY"))
    ids, names = list(tags), sorted({t for ts in tags.values() for t in ts})
    dense = np.array([[t in tags[i] for t in names] for i in ids], dtype=np.float32)
    mapping = dict(zip(ids, tags_from_matrix(dense, names)))
    assert all(set(mapping[i]) == set(tags[i]) for i in ids)
    out = build_d2v_targets(dummy, "DUMMY", dim=8, tags=mapping, sets=["val"])
    assert list(out) == ["val"] and np.load(out["val"]).shape == (12, 8)

    test_ids = fileio.read_lines(dummy.items_index("test", "DUMMY"))
    rows = [r for r in fileio.read_tsv(dummy.tags_index("DUMMY")) if r[0] != test_ids[0]]
    fileio.write_tsv(dummy.tags_index("DUMMY"), rows)
    with pytest.raises(DataMismatch, match=test_ids[0]):
        build_d2v_targets(dummy, "DUMMY", dim=8)
    dummy.tags_index("DUMMY").unlink()
    with pytest.raises(MissingInput, match="tags_DUMMY.tsv"):
        build_d2v_targets(dummy, "DUMMY", dim=8)


# ------------------------------------------------------------------------------ real SUPER
def test_super_lyrics_vsm_and_w2v(super_layout):
    out = build_vsm(super_layout, "SUPER")
    vocab = vocabulary(super_layout, "bow", "SUPER")
    terms = {t for t, _, _ in vocab}
    for set_ in SETS:
        assert fileio.load_sparse(out[set_]).shape == (3, len(vocab))
    for t in terms:
        assert not any(c in t for c in "\r\ufeff\xa0 ") and t == unicodedata.normalize("NFC", t.casefold())
    assert {"canarias", "vacilar"} <= terms  # train lyrics (S1 a_vacilar)
    assert "picón" not in terms  # only in navidad_caliente (test)
    test = fileio.load_sparse(out["test"])
    assert all(test[i].nnz > 0 for i in range(3))  # shared Spanish words still give test rows weight

    out = build_w2v(super_layout, "SUPER", sequence_length=100, embedding_dim=12, n_epochs=2)
    words = [t for t, _, _ in vocabulary(super_layout, "w2v", "SUPER")]
    x = np.load(out["test"])
    assert x.shape == (3, 100) and np.load(out["train"]).shape == (3, 100)
    navidad = tokenize(NAVIDAD.read_bytes())
    row = x[0]  # S7 navidad_caliente
    assert (row == 1).any() and (row > 1).any()  # unknown and known words
    assert [words[i] if i > 1 else None for i in row[:4]] == [
        t if t in words else None for t in navidad[:4]]
    assert np.load(super_layout.embedding_weights("w2v", "SUPER")).shape == (len(words), 12)


def test_d2v_shufl_variant(dummy):
    """shufl's train_tags_model.py + prepare_dataset.py: PV-DM, 10 passes at a constant rate lowered by
    0.002 each, then every vector shifted by |min| over all vectors."""
    from gensim.models.doc2vec import Doc2Vec, TaggedDocument
    out = build_d2v_targets(dummy, "DUMMY", dim=16, variant="shufl", min_count=1)
    ys = np.concatenate([np.load(out[s]) for s in SETS])
    assert ys.shape[1] == 16 and ys.min() == 0.0  # every item is in a split: the smallest value is 0
    params = json.loads(out.params.read_text())
    assert (params["variant"], params["dm"], params["passes"], params["epochs_per_pass"]) == ("shufl", 1, 10, 5)
    assert params["alpha_per_pass"] == [0.025, 0.023, 0.021, 0.019, 0.017, 0.015, 0.013, 0.011, 0.009, 0.007]
    assert (params["center"], params["normalize"], params["window"], params["hs"], params["negative"]) == \
        (False, False, 8, 1, 0)
    # the same as gensim driven by hand the way shufl did, then shifted
    tags = read_tags(dummy.tags_index("DUMMY"))
    corpus = [TaggedDocument(t, [i]) for i, t in tags.items() if t]
    model = Doc2Vec(vector_size=16, alpha=0.025, min_alpha=0.025, dm=1, window=8, min_count=1, sample=0, hs=1,
                    negative=0, seed=0, workers=1)
    model.build_vocab(corpus)
    for p in range(10):
        a = 0.025 - 0.002 * p
        model.train(corpus, total_examples=len(corpus), epochs=5, start_alpha=a, end_alpha=a)
    shift = abs(model.dv.vectors.min())
    assert params["shift"] == pytest.approx(float(shift))
    first = fileio.read_lines(dummy.items_index("train", "DUMMY"))
    assert np.allclose(np.load(out["train"]), np.stack([model.dv[i] for i in first]) + shift, atol=1e-6)
    with pytest.raises(ConfigError, match="variant"):
        build_d2v_targets(dummy, "DUMMY", variant="dm")


@pytest.mark.parametrize("build,kwargs,message", [
    (build_w2v, {"n_jobs": 0}, "n_jobs must be an integer >= 1, got 0"),
    (build_w2v, {"n_epochs": True}, "n_epochs must be an integer >= 1, got True"),
    (build_w2v, {"seed": -1}, "seed must be an integer >= 0, got -1"),
    (build_w2v, {"sentences": "words"}, "sentences must be one of 'lines', 'texts', got 'words'"),
    (build_d2v_targets, {"n_epochs": 0}, "n_epochs must be an integer >= 1, got 0"),
    (build_d2v_targets, {"alpha": float("nan")}, "alpha must be a positive finite number, got nan"),
    (build_d2v_targets, {"variant": "dm"}, "variant must be one of 'dbow', 'shufl', got 'dm'"),
    (build_vsm, {"n_words": 2.5}, "n_words must be an integer >= 0, got 2.5"),
])
def test_text_builders_refuse_bad_arguments_before_reading(tmp_path, build, kwargs, message):
    # the data root is empty: each check must come before any file is looked for
    with pytest.raises(ConfigError) as err:
        build(DataLayout(tmp_path), "T", **kwargs)
    assert str(err.value) == message
    assert not any(tmp_path.iterdir())
