"""Tokenizers implemented in C++: character level and byte-level BPE (GPT-2 style), saved as JSON.

    tok = loom.tokenizers.ByteLevelBPETokenizer().train(text, vocab_size=1024)
    ids = tok.encode("Hello world")            # list[int]
    t = tok.encode("...", return_tensor=True)  # int64 loom tensor, no Python list in between
    tok.decode(ids)                            # str
    tok.save("tok.json"); tok = loom.tokenizers.ByteLevelBPETokenizer.load("tok.json")

Encoding and training release the GIL.
"""
from loom import _C

_data = _C._data

__all__ = ["CharTokenizer", "ByteLevelBPETokenizer", "load"]


class _Tokenizer:
    _impl_cls = None

    def __init__(self):
        self._impl = self._impl_cls()

    @classmethod
    def _wrap(cls, impl):
        tok = cls.__new__(cls)
        tok._impl = impl
        return tok

    @property
    def vocab_size(self):
        """Number of token ids."""
        return self._impl.vocab_size

    def __len__(self):
        return self._impl.vocab_size

    def encode(self, text, return_tensor=False):
        """Token ids of `text` (str, or bytes): a list of ints, or an int64 tensor when return_tensor=True."""
        if return_tensor:
            return self._impl.encode_tensor(text)
        return self._impl.encode(text)

    def encode_tensor(self, text):
        """Token ids of `text` as an int64 tensor [n]."""
        return self._impl.encode_tensor(text)

    def decode_bytes(self, ids):
        """The exact bytes for `ids` (a sequence of ints or an integer tensor)."""
        if not isinstance(ids, _C.Tensor):
            ids = [int(i) for i in ids]
        return self._impl.decode_bytes(ids)

    def decode(self, ids):
        """The text for `ids`; bytes that are not valid UTF-8 become U+FFFD (use decode_bytes for the exact bytes)."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def to_json(self):
        return self._impl.to_json()

    @classmethod
    def from_json(cls, json):
        return cls._wrap(cls._impl_cls.from_json(json))

    def save(self, path):
        """Writes the tokenizer as JSON (atomically: temporary file + rename)."""
        self._impl.save(str(path))

    @classmethod
    def load(cls, path):
        """Reads a tokenizer written by save(); a malformed file raises ValueError naming it."""
        return cls._wrap(cls._impl_cls.load(str(path)))

    def __repr__(self):
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"


class CharTokenizer(_Tokenizer):
    """Character-level tokenizer: ids are positions in the sorted distinct Unicode code points of the training text.

    With unk=True an extra last id stands for any character outside the vocabulary (decoded as U+FFFD);
    otherwise encoding an unknown character raises ValueError.
    """

    _impl_cls = _data.CharTokenizer

    def train(self, text, vocab_size=None, unk=False):
        """Builds the vocabulary from `text`. `vocab_size`, if given, is an upper bound that is checked."""
        self._impl.train(text, unk)
        if vocab_size is not None and self.vocab_size > vocab_size:
            raise ValueError(f"CharTokenizer.train: the text has {self.vocab_size} distinct characters"
                             f"{' plus unk' if unk else ''}, more than vocab_size={vocab_size}")
        return self

    @property
    def chars(self):
        """The vocabulary as a list of characters, in id order (without unk)."""
        return [chr(c) for c in self._impl.code_points]

    @property
    def unk_id(self):
        """The unknown token's id, or None."""
        return self._impl.unk_id if self._impl.has_unk else None


class ByteLevelBPETokenizer(_Tokenizer):
    """Byte-level BPE like GPT-2: 256 byte tokens plus learned merges; decode(encode(x)) == x for any text or bytes.

    Training counts adjacent pairs inside GPT-2 style pre-tokens and merges the most frequent pair first;
    ties go to the smallest (left id, right id), so training is deterministic. Merges stop at vocab_size or when
    no pair occurs min_frequency times.
    """

    _impl_cls = _data.ByteLevelBPETokenizer

    def train(self, text, vocab_size=1024, min_frequency=2):
        """Learns merges from `text` (str or bytes) until the vocabulary has vocab_size tokens."""
        self._impl.train(text, int(vocab_size), int(min_frequency))
        return self

    @property
    def merges(self):
        """The learned merges as (left id, right id) pairs; merge r creates id 256 + r."""
        return list(self._impl.merges)

    def token_bytes(self, id):
        """The bytes of token `id`."""
        return self._impl.token_bytes(id)


def pretokenize(text):
    """GPT-2 style pre-tokens of `text` (as bytes), the units BPE merges inside."""
    return _data.pretokenize(text)


def load(path):
    """Loads either tokenizer from its JSON file (the "type" field says which)."""
    import json

    with open(path, "rb") as f:
        head = f.read()
    try:
        kind = json.loads(head).get("type")
    except (ValueError, AttributeError) as e:
        raise ValueError(f"loom.tokenizers.load: '{path}': not a tokenizer JSON file ({e})") from None
    for cls in (CharTokenizer, ByteLevelBPETokenizer):
        if kind == cls.__name__:
            return cls.load(path)
    raise ValueError(f"loom.tokenizers.load: '{path}': unknown tokenizer type {kind!r}")
