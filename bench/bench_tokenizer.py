"""Tokenizer throughput: encode the built-in corpus repeated to ~100 MB with loom's char and byte-level BPE
tokenizers (one core, one call each), and with HuggingFace `tokenizers` / `tiktoken` when installed.

    python bench/bench_tokenizer.py [--mb 100] [--vocab 4096] [--data FILE]
"""
import argparse
import os
import time

import loom
from loom.datasets import text_corpus
from loom.tokenizers import ByteLevelBPETokenizer, CharTokenizer


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=100.0, help="size of the encoded text in MB (default 100)")
    ap.add_argument("--vocab", type=int, default=4096, help="BPE vocabulary size (default 4096)")
    ap.add_argument("--data", default=None, help="UTF-8 text file (default: the fortunes corpus)")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    loom.set_num_threads(1) if hasattr(loom, "set_num_threads") else None

    corpus = text_corpus(args.data)
    nbytes = len(corpus.encode("utf-8"))
    print(f"corpus: {len(corpus):,} characters, {nbytes:,} UTF-8 bytes")
    reps = max(1, int(args.mb * 1e6 // nbytes))
    big = corpus * reps
    big_mb = len(big.encode("utf-8")) / 1e6
    print(f"benchmark text: corpus x {reps} = {big_mb:.1f} MB")

    char, t = timed(lambda: CharTokenizer().train(corpus))
    print(f"char   train on corpus: {t:.2f} s (vocab {char.vocab_size})")
    bpe, t = timed(lambda: ByteLevelBPETokenizer().train(corpus, vocab_size=args.vocab))
    print(f"bpe    train on corpus: {t:.2f} s (vocab {bpe.vocab_size})")

    results = {}
    for name, tok in [("loom CharTokenizer", char), ("loom ByteLevelBPETokenizer", bpe)]:
        ids, t = timed(lambda: tok.encode_tensor(big))
        results[name] = (big_mb / t, ids.numel())
        print(f"{name:28s} encode {big_mb:.0f} MB: {t:6.2f} s = {big_mb / t:7.1f} MB/s, {ids.numel():,} tokens")
        sample = big[:200000]
        assert tok.decode(tok.encode(sample)) == sample

    try:
        import tokenizers as hf  # noqa: F401
        from tokenizers import ByteLevelBPETokenizer as HFBPE
        hftok = HFBPE()
        hftok.train_from_iterator([corpus], vocab_size=args.vocab)
        enc, t = timed(lambda: hftok.encode(big))
        print(f"{'HF tokenizers BPE':28s} encode {big_mb:.0f} MB: {t:6.2f} s = {big_mb / t:7.1f} MB/s")
    except ImportError:
        print("HuggingFace tokenizers: not installed (skipped)")
    try:
        import tiktoken
        enc = tiktoken.get_encoding("gpt2")
        out, t = timed(lambda: enc.encode_ordinary(big))
        print(f"{'tiktoken gpt2':28s} encode {big_mb:.0f} MB: {t:6.2f} s = {big_mb / t:7.1f} MB/s")
    except Exception as e:  # not installed, or no cached encoding file offline
        print(f"tiktoken: unavailable ({type(e).__name__}) (skipped)")


if __name__ == "__main__":
    main()
