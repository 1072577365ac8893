"""Tokenizers: char and byte-level BPE round trips, training, determinism, JSON save/load, error paths."""
import json
import os
import random

import pytest

import loom
from loom.tokenizers import ByteLevelBPETokenizer, CharTokenizer, pretokenize

UNICODE_TEXT = "Hello, wörld! naïve café — 日本語のテキスト 😀👍🏽 👨‍👩‍👧 e\u0301 \u00a0tab\there\r\nend 123 ½"

CORPUS = ("The quick brown fox jumps over the lazy dog. " * 20 + "She said: 'I'll do it, they're here, we've won.' "
          * 10 + "In 1999 there were 42 foxes and 7 dogs.\n\n" * 10 + "naïve café 日本語 😀 " * 5)


def test_char_matches_python_reference():
    text = UNICODE_TEXT + CORPUS
    tok = CharTokenizer().train(text)
    vocab = sorted(set(text))
    ref = {c: i for i, c in enumerate(vocab)}
    assert tok.vocab_size == len(vocab)
    assert tok.chars == vocab
    ids = tok.encode(text)
    assert ids == [ref[c] for c in text]
    assert tok.decode(ids) == text
    t = tok.encode(text, return_tensor=True)
    assert t.dtype == loom.int64 and t.tolist() == ids
    assert tok.decode(t) == text


def test_char_unknown_and_unk():
    tok = CharTokenizer().train("abc")
    with pytest.raises(ValueError, match=r"CharTokenizer.encode: character 'z' \(U\+007A\)"):
        tok.encode("abz")
    tok = CharTokenizer().train("abc", unk=True)
    assert tok.vocab_size == 4 and tok.unk_id == 3
    assert tok.encode("azb") == [0, 3, 1]
    assert tok.decode([0, 3, 1]) == "a\ufffdb"
    with pytest.raises(IndexError, match="out of range"):
        tok.decode([7])
    with pytest.raises(ValueError, match="vocab_size"):
        CharTokenizer().train("abcdef", vocab_size=3)


def test_char_save_load(tmp_path):
    tok = CharTokenizer().train(UNICODE_TEXT, unk=True)
    path = tmp_path / "char.json"
    tok.save(path)
    assert not [p for p in os.listdir(tmp_path) if "tmp" in p]  # atomic write leaves no temporary file
    back = CharTokenizer.load(path)
    assert back.vocab_size == tok.vocab_size
    assert back.encode(UNICODE_TEXT) == tok.encode(UNICODE_TEXT)
    assert json.loads(path.read_text())["type"] == "CharTokenizer"
    assert isinstance(loom.tokenizers.load(path), CharTokenizer)


def test_bpe_untrained_is_bytes():
    tok = ByteLevelBPETokenizer()
    assert tok.vocab_size == 256
    assert tok.encode("hé") == list("hé".encode())


def test_bpe_round_trip_unicode_and_bytes():
    tok = ByteLevelBPETokenizer().train(CORPUS + UNICODE_TEXT, vocab_size=400)
    for text in [UNICODE_TEXT, CORPUS, "", " ", "  \n\n  x", "'s'll 've", "a" * 1000, "\x00\x01\x7f"]:
        ids = tok.encode(text)
        assert tok.decode(ids) == text
        assert all(0 <= i < tok.vocab_size for i in ids)
    rng = random.Random(0)
    for _ in range(20):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
        ids = tok.encode(data)
        assert tok.decode_bytes(ids) == data
    # Invalid UTF-8 decodes with replacement characters, like bytes.decode(errors='replace').
    assert tok.decode(tok.encode(b"ab\xffcd")) == "ab\ufffdcd"


def test_bpe_merges_reduce_tokens_and_are_deterministic():
    a = ByteLevelBPETokenizer().train(CORPUS, vocab_size=300)
    b = ByteLevelBPETokenizer().train(CORPUS, vocab_size=300)
    assert a.merges == b.merges
    assert a.vocab_size == 300
    n_bytes = len(CORPUS.encode())
    n_tokens = len(a.encode(CORPUS))
    assert n_tokens < 0.5 * n_bytes
    # The first merge is the most frequent adjacent byte pair inside pre-tokens (ties: smallest pair).
    counts = {}
    for word in pretokenize(CORPUS):
        for x, y in zip(word, word[1:]):
            counts[(x, y)] = counts.get((x, y), 0) + 1
    best = max(counts.items(), key=lambda kv: (kv[1], -kv[0][0], -kv[0][1]))[0]
    assert a.merges[0] == best
    # A merged token's bytes are the concatenation of its parts.
    for r, (x, y) in enumerate(a.merges):
        assert a.token_bytes(256 + r) == a.token_bytes(x) + a.token_bytes(y)
    # Training on more merges gives a prefix-extension of the merge list.
    c = ByteLevelBPETokenizer().train(CORPUS, vocab_size=320)
    assert c.merges[:44] == a.merges
    assert len(c.encode(CORPUS)) <= n_tokens


def test_bpe_min_frequency_stops_early():
    tok = ByteLevelBPETokenizer().train("abcd", vocab_size=1000)
    assert tok.vocab_size == 256  # no pair occurs twice
    tok = ByteLevelBPETokenizer().train("abcd", vocab_size=1000, min_frequency=1)
    assert tok.vocab_size == 259
    assert tok.encode("abcd") == [258]
    with pytest.raises(ValueError, match="at least 256"):
        ByteLevelBPETokenizer().train("abc", vocab_size=10)


def test_pretokenize_gpt2_rules():
    def pieces(s):
        return [p.decode() for p in pretokenize(s)]

    assert pieces("Hello world") == ["Hello", " world"]
    assert pieces("I'll don't they're") == ["I", "'ll", " don", "'t", " they", "'re"]
    assert pieces("abc  def") == ["abc", " ", " def"]
    assert pieces("a\n\nb") == ["a", "\n", "\n", "b"]
    assert pieces("x 123 !!? end  ") == ["x", " 123", " !!?", " end", "  "]
    assert pieces("日本語 😀👍") == ["日本語", " 😀👍"]
    assert "".join(pieces(UNICODE_TEXT)) == UNICODE_TEXT


def test_bpe_save_load_identical(tmp_path):
    tok = ByteLevelBPETokenizer().train(CORPUS, vocab_size=350)
    path = tmp_path / "bpe.json"
    tok.save(str(path))
    back = ByteLevelBPETokenizer.load(path)
    assert back.merges == tok.merges
    for text in [CORPUS, UNICODE_TEXT]:
        assert back.encode(text) == tok.encode(text)
    assert isinstance(loom.tokenizers.load(path), ByteLevelBPETokenizer)
    assert back.encode_tensor(CORPUS).tolist() == tok.encode(CORPUS)


@pytest.mark.parametrize("content, match", [
    ("{not json", "invalid JSON"),
    ('{"type": "CharTokenizer", "code_points": [97]}', "not a ByteLevelBPETokenizer"),
    ('{"type": "ByteLevelBPETokenizer"}', "merges"),
    ('{"type": "ByteLevelBPETokenizer", "merges": [[1, 2], [3]]}', "merge 1"),
    ('{"type": "ByteLevelBPETokenizer", "merges": [[1, 999]]}', "merge 0"),
    ('{"type": "ByteLevelBPETokenizer", "merges": [[1, 2]], "vocab_size": 300}', "vocab_size"),
])
def test_bpe_malformed_json(tmp_path, content, match):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=match) as info:
        ByteLevelBPETokenizer.load(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("content, match", [
    ("[1, 2", "invalid JSON"),
    ('{"type": "CharTokenizer", "code_points": [98, 97]}', "strictly increasing"),
    ('{"type": "CharTokenizer", "code_points": [55296]}', "surrogate"),
    ('{"type": "CharTokenizer", "code_points": [-1]}', "code point"),
])
def test_char_malformed_json(tmp_path, content, match):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=match) as info:
        CharTokenizer.load(path)
    assert str(path) in str(info.value)
    with pytest.raises(ValueError, match="no such file"):
        CharTokenizer.load(tmp_path / "missing.json")


def test_encode_type_errors():
    tok = CharTokenizer().train("abc")
    with pytest.raises(TypeError, match="expected str or bytes"):
        tok.encode(123)
    with pytest.raises(ValueError, match="invalid UTF-8"):
        tok.encode(b"a\xff")
