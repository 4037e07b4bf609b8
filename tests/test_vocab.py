import numpy as np
import pyarrow.parquet as pq

from models.vocab import PAD_ID, UNK_ID, build_vocab, glove_embeddings, glove_folder, tokenize


def test_tokenizer_splits_like_glove():
    assert tokenize("Don't you DARE, she’s gone -- can't...") == [
        "do", "n't", "you", "dare", ",", "she", "'s", "gone", "--", "ca", "n't", "...",
    ]
    assert tokenize("I'm HOME!") == tokenize("i'm home!") == ["i", "'m", "home", "!"]


def test_vocab_is_frequency_ranked_deterministic_and_capped():
    texts = ["the cat sat", "the dog sat", "the end"]
    vocab = build_vocab(texts, min_count=1)
    assert vocab.tokens == ("<pad>", "<unk>", "the", "sat", "cat", "dog", "end")
    assert build_vocab(reversed(texts), min_count=1) == vocab
    assert build_vocab(texts, min_count=2).tokens == ("<pad>", "<unk>", "the", "sat")
    assert len(build_vocab(texts, max_size=4)) == 4
    assert vocab.encode(["The zebra sat.", "the cat"], max_len=4) == [2, UNK_ID, 3, UNK_ID]


def test_glove_rows_are_copied_and_unknown_words_get_random_rows():
    vocab = build_vocab(["the king xqzzyq"])
    matrix, coverage = glove_embeddings(vocab, seed=1)
    words = pq.read_table(glove_folder() / "glove_6B_index.parquet").column("index").to_pylist()
    glove = np.load(glove_folder() / "glove_6B_50d_emb.npy", mmap_mode="r")
    king = vocab.tokens.index("king")
    np.testing.assert_array_equal(matrix[king], glove[words.index("king")])
    assert coverage == 2 / 3 and matrix.shape == (5, 50) and matrix.dtype == np.float32
    assert not matrix[PAD_ID].any() and matrix[vocab.tokens.index("xqzzyq")].any()
    np.testing.assert_array_equal(glove_embeddings(vocab, seed=1)[0], matrix)
