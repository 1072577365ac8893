"""Writes the seed corpus of the safetensors fuzzer (tests/fuzz/corpus/safetensors/): small valid files from the
reference `safetensors` library and from loom.save (a nested checkpoint), and hand-made invalid ones near the
reader's checks. The files are committed; rerun this only to change them:  python -m tests.fuzz.make_corpus
"""
import json
import os
import struct
import tempfile

import numpy as np
import safetensors.numpy

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "safetensors")


def raw(header, data=b"", length=None):
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(text) if length is None else length) + text + data


def entry(dtype, shape, offsets):
    return {"dtype": dtype, "shape": shape, "data_offsets": offsets}


def reference_files():
    """Valid files written by the reference library: each dtype, 0-d, zero-size, metadata."""
    arrays = {
        "f32": np.arange(6, dtype=np.float32).reshape(2, 3), "f64": np.array([1.5, -2.0]),
        "f16": np.ones(3, np.float16),
        "i64": np.array([-1, 2**40]), "i32": np.arange(4, dtype=np.int32), "i16": np.array([7], np.int16),
        "i8": np.array([-8, 8], np.int8), "u8": np.arange(5, dtype=np.uint8), "b": np.array([True, False]),
    }
    files = {}
    with tempfile.TemporaryDirectory() as tmp:
        def save(name, tensors, metadata=None):
            path = os.path.join(tmp, name)
            safetensors.numpy.save_file(tensors, path, metadata=metadata)
            files[name] = open(path, "rb").read()

        save("all_dtypes", arrays)
        save("scalar_and_empty", {"s": np.array(3.0, np.float32), "e": np.zeros((0, 4), np.float32)})
        save("metadata", {"w": np.ones((2, 2), np.float32)}, metadata={"format": "pt", "note": "x"})
        save("empty", {})
        save("high_rank", {"r": np.ones((1,) * 8, np.float32)})
    return files


def loom_files():
    """A nested checkpoint as loom.save writes it (the loom.structure metadata)."""
    import loom

    state = {"model": {"w": loom.ones(2, 2), "b": loom.zeros(2)}, "step": 3, "lr": 0.5, "names": ["a", "b"],
             "opt": {"state": {0: {"exp_avg": loom.ones(2)}}, "flag": True, "none": None}}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "nested.safetensors")
        loom.save(state, path)
        return {"loom_nested": open(path, "rb").read()}


def invalid_files():
    """Files near each check of the reader (each rejected, with a different message)."""
    return {
        "bf16": raw({"x": entry("BF16", [2], [0, 4])}, b"\x80\x3f\x00\x40"),
        "truncated_header": raw(b'{"x": {"dtype": "F32",'),
        "length_past_eof": raw(b'{"a":1}', length=1000),
        "overlap": raw({"x": entry("F32", [2], [0, 8]), "y": entry("F32", [2], [4, 12])}, b"\0" * 12),
        "gap": raw({"x": entry("F32", [2], [0, 8]), "y": entry("F32", [2], [12, 20])}, b"\0" * 20),
        "shape_mismatch": raw({"x": entry("F32", [2, 3], [0, 20])}, b"\0" * 20),
        "negative_dim": raw({"x": entry("F32", [2, -3], [0, 8])}, b"\0" * 8),
        "overflowing_dims": raw({"x": entry("F64", [2**32, 2**32], [0, 8])}, b"\0" * 8),
        "huge_dim": raw(b'{"x":{"dtype":"U8","shape":[18446744073709551615],"data_offsets":[0,1]}}', b"\0"),
        "duplicate_keys": raw(b'{"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
                              b'"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"\0"),
        "bad_metadata": raw({"__metadata__": {"a": 1}}),
        "bad_structure": raw({"__metadata__": {"loom.structure": '{"t": "dict", "items": [["a", {"t": "x"}]]}'}}),
        "rank_65": raw({"x": entry("U8", [1] * 65, [0, 1])}, b"\0"),
        "deep_json": raw(b'{"z":' + b"[" * 70 + b"]" * 70 + b"}"),
        "bool_bytes": raw({"m": entry("BOOL", [3], [0, 3])}, b"\x00\x07\x01"),
        "unicode_name": raw({"\u00e9\u4e2d": entry("U8", [1], [0, 1])}, b"\x05"),
    }


def main():
    os.makedirs(CORPUS, exist_ok=True)
    for old in os.listdir(CORPUS):
        os.remove(os.path.join(CORPUS, old))
    files = {**reference_files(), **loom_files(), **invalid_files()}
    for name, data in sorted(files.items()):
        assert len(data) < 4096, name
        with open(os.path.join(CORPUS, name + ".safetensors"), "wb") as f:
            f.write(data)
    print(f"{len(files)} files in {CORPUS}")


if __name__ == "__main__":
    main()
