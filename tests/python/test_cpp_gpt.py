"""Cross-language check of the C++ GPT (loom::models::GPT) against the Python one (loom.models.GPT).

The Python side saves a GPT state dict, an input batch and its logits with loom.save_file; the C++ example
``build/cmake/train_gpt --check-logits FILE`` loads the weights into the C++ GPT by name, recomputes the logits and
exits 0 only when they match (max abs difference <= 1e-5). ``make test`` builds the binary (``make cpp-build``)
before pytest runs; when it is missing these tests fail (they do not skip).
"""
import pathlib
import subprocess

import pytest

import loom
from loom.models import GPT, GPTConfig

ROOT = pathlib.Path(__file__).resolve().parents[2]
BINARY = ROOT / "build" / "cmake" / "train_gpt"


def _binary():
    if not BINARY.is_file():
        pytest.fail(f"the C++ example {BINARY} is missing: run `make cpp-build` first (`make test` does)")
    return BINARY


def _save(path, model, idx, init_seed=None, tamper=None, generate=None):
    model.eval()
    with loom.no_grad():
        logits, _ = model(idx)
    tensors = dict(model.state_dict())
    tensors["check.idx"] = idx
    tensors["check.logits"] = logits
    extra = {}
    if generate is not None:  # (tokens, temperature, top_k, seed)
        tokens, temperature, top_k, seed = generate
        loom.manual_seed(seed)
        tensors["check.generated"] = model.generate(idx, tokens, temperature=temperature, top_k=top_k)
        extra = {"generate_tokens": str(tokens), "generate_temperature": repr(float(temperature)),
                 "generate_seed": str(seed)}
        if top_k is not None:
            extra["generate_top_k"] = str(top_k)
    if tamper is not None:
        tensors[tamper] = tensors[tamper] + 1e-3
    c = model.config
    metadata = {"vocab_size": str(c.vocab_size), "block_size": str(c.block_size), "n_layer": str(c.n_layer),
                "n_head": str(c.n_head), "n_embd": str(c.n_embd), "bias": str(int(c.bias))}
    if init_seed is not None:
        metadata["init_seed"] = str(init_seed)
    metadata.update(extra)
    loom.save_file(tensors, str(path), metadata=metadata)


def _run(path):
    result = subprocess.run([str(_binary()), "--check-logits", str(path)], capture_output=True, text=True,
                            timeout=120)
    return result.returncode, result.stdout + result.stderr


def _perturbed(config, seed):
    loom.manual_seed(seed)
    model = GPT(config)
    with loom.no_grad():  # LayerNorm weights/biases and linear biases away from their ones/zeros init
        for p in model.parameters():
            p.add_(loom.randn(*p.shape) * 0.1)
    return model


@pytest.mark.parametrize("bias", [True, False])
def test_cpp_gpt_logits_match_python(tmp_path, bias):
    config = GPTConfig(vocab_size=13, block_size=10, n_layer=2, n_head=2, n_embd=16, bias=bias)
    model = _perturbed(config, 0)
    path = tmp_path / "gpt.safetensors"
    _save(path, model, loom.randint(0, 13, (3, 9)))
    code, out = _run(path)
    assert code == 0, out
    assert "max abs difference" in out


@pytest.mark.parametrize("temperature, top_k", [(0.0, None), (1.0, None), (0.8, 4)])
def test_cpp_gpt_generate_matches_python(tmp_path, temperature, top_k):
    # 12 new tokens after 3 with block_size 10: the KV-cache path, then cropping and recomputation.
    model = _perturbed(GPTConfig(vocab_size=13, block_size=10, n_layer=2, n_head=2, n_embd=16), 2)
    path = tmp_path / "generate.safetensors"
    _save(path, model, loom.randint(0, 13, (2, 3)), generate=(12, temperature, top_k, 99))
    code, out = _run(path)
    assert code == 0, out
    assert "gives Python's tokens: OK" in out


def test_cpp_gpt_same_seed_same_init(tmp_path):
    # loom.manual_seed(s) then GPT(config) draws the same numbers in the same order in C++ and Python.
    loom.manual_seed(123)
    model = GPT(GPTConfig(vocab_size=17, block_size=8, n_layer=3, n_head=4, n_embd=32))
    path = tmp_path / "init.safetensors"
    _save(path, model, loom.randint(0, 17, (2, 8)), init_seed=123)
    code, out = _run(path)
    assert code == 0, out
    assert "initialisation with seed 123" in out and "MISMATCH" not in out


def test_cpp_gpt_check_detects_a_mismatch(tmp_path):
    # The check can fail: one weight changed after the logits were computed.
    model = _perturbed(GPTConfig(vocab_size=13, block_size=10, n_layer=2, n_head=2, n_embd=16), 1)
    path = tmp_path / "tampered.safetensors"
    _save(path, model, loom.randint(0, 13, (2, 10)), tamper="transformer.h.1.mlp.c_fc.bias")
    code, out = _run(path)
    assert code == 1, out
    assert "MISMATCH" in out
    # a different init seed is detected too
    loom.manual_seed(7)
    model = GPT(GPTConfig(vocab_size=13, block_size=10, n_layer=1, n_head=2, n_embd=16))
    path = tmp_path / "seed.safetensors"
    _save(path, model, loom.randint(0, 13, (1, 4)), init_seed=8)
    code, out = _run(path)
    assert code == 1, out
    assert "initialisation with seed 8" in out and "MISMATCH" in out
    # and generated tokens that are not the C++ ones
    model = _perturbed(GPTConfig(vocab_size=13, block_size=10, n_layer=1, n_head=2, n_embd=16), 3)
    path = tmp_path / "generated.safetensors"
    _save(path, model, loom.randint(0, 13, (1, 3)), generate=(5, 0.0, None, 0), tamper="check.generated")
    code, out = _run(path)
    assert code == 1, out
    assert "differs from Python's tokens: MISMATCH" in out
