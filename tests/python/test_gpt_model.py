"""loom.models.GPT against its PyTorch twin (torch_reference_models.TorchGPT) with copied weights: logits, loss,
every parameter gradient, state_dict layout, weight tying, init scheme and KV-cached generation."""
import math

import numpy as np
import pytest
import torch

import loom
from loom.models import GPT, GPTConfig
from tolerances import GRAD, MODULE
from torch_reference_models import TorchGPT, copy_loom_to_torch

CONFIG = dict(vocab_size=23, block_size=16, n_layer=2, n_head=4, n_embd=32)


def make_pair(bias=True, **overrides):
    config = GPTConfig(**{**CONFIG, "bias": bias, **overrides})
    loom.manual_seed(0)
    model = GPT(config)
    twin = TorchGPT(config)
    copy_loom_to_torch(model, twin)
    return model, twin


def batch(B=3, T=12, seed=0):
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, CONFIG["vocab_size"], size=(B, T))
    targets = rng.integers(0, CONFIG["vocab_size"], size=(B, T))
    targets[0, :3] = -1  # ignored positions, as nanoGPT's ignore_index=-1
    return (loom.tensor(idx.tolist(), dtype=loom.int64), loom.tensor(targets.tolist(), dtype=loom.int64),
            torch.tensor(idx), torch.tensor(targets))


@pytest.mark.parametrize("bias", [True, False])
def test_state_dict_keys_and_shapes_match_torch(bias):
    model, twin = make_pair(bias)
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in twin.state_dict().items()}
    assert list(ours) == list(theirs)
    assert ours == theirs
    assert [n for n, _ in model.named_parameters()] == [n for n, _ in twin.named_parameters()]
    assert model.num_params() == sum(p.numel() for p in twin.parameters()) - twin.transformer.wpe.weight.numel()


@pytest.mark.parametrize("bias", [True, False])
def test_logits_loss_and_grads_match_torch(bias):
    model, twin = make_pair(bias)
    idx, targets, t_idx, t_targets = batch()
    logits, loss = model(idx, targets)
    t_logits, t_loss = twin(t_idx, t_targets)
    rtol, atol = MODULE[loom.float32]
    np.testing.assert_allclose(logits.detach().numpy(), t_logits.detach().numpy(), rtol=rtol, atol=atol)
    np.testing.assert_allclose(loss.item(), t_loss.item(), rtol=rtol)
    loss.backward()
    t_loss.backward()
    t_params = dict(twin.named_parameters())
    rtol, atol = GRAD[loom.float32]
    names = []
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        np.testing.assert_allclose(p.grad.numpy(), t_params[name].grad.numpy(), rtol=rtol, atol=atol, err_msg=name)
        names.append(name)
    assert len(names) == len(t_params)


def test_forward_without_targets_returns_no_loss():
    model, _ = make_pair()
    idx, *_ = batch()
    logits, loss = model(idx)
    assert loss is None and tuple(logits.shape) == (3, 12, CONFIG["vocab_size"])


def test_tied_weights_share_storage():
    model, _ = make_pair()
    wte, head = model.transformer.wte.weight, model.lm_head.weight
    assert wte is head
    sd = model.state_dict()
    assert sd["transformer.wte.weight"].data_ptr() == sd["lm_head.weight"].data_ptr()
    with loom.no_grad():
        head.fill_(0.5)
    assert float(model.transformer.wte.weight.sum()) == pytest.approx(0.5 * wte.numel())
    # Counted once.
    assert sum(1 for _ in model.parameters()) == len(model.state_dict()) - 1


def test_init_scheme():
    config = GPTConfig(vocab_size=500, block_size=64, n_layer=4, n_head=4, n_embd=128)
    loom.manual_seed(0)
    model = GPT(config)
    for name, p in model.named_parameters():
        values = p.detach().numpy()
        if name.endswith("c_proj.weight"):
            assert abs(values.std() - 0.02 / math.sqrt(2 * config.n_layer)) < 0.1 * 0.02 / math.sqrt(8), name
        elif name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name.endswith("ln_f.weight"):
            assert np.all(values == 1), name
        elif name.endswith(".bias"):
            assert np.all(values == 0), name
        else:
            assert abs(values.std() - 0.02) < 0.002, name


def test_load_state_dict_from_torch_twin():
    model, twin = make_pair()
    loom.manual_seed(5)
    other = GPT(model.config)
    result = other.load_state_dict(twin.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    idx, *_ = batch()
    np.testing.assert_array_equal(other(idx)[0].detach().numpy(), model(idx)[0].detach().numpy())


def test_kv_cache_matches_full_recompute():
    model, _ = make_pair()
    model.eval()
    idx, *_ = batch(B=2, T=10)
    with loom.no_grad():
        full, _ = model(idx)
        # Prefix of 4 positions, then one token at a time, then a chunk of 3 after the cache.
        logits, cache = model.forward_cached(idx[:, :4])
        pieces = [logits]
        for t in range(4, 7):
            logits, cache = model.forward_cached(idx[:, t:t + 1], cache)
            pieces.append(logits)
        logits, cache = model.forward_cached(idx[:, 7:10], cache)
        pieces.append(logits)
    assert tuple(cache[0][0].shape) == (2, CONFIG["n_head"], 10, CONFIG["n_embd"] // CONFIG["n_head"])
    cached = loom.cat(pieces, dim=1)
    rtol, atol = MODULE[loom.float32]
    np.testing.assert_allclose(cached.numpy(), full.numpy(), rtol=rtol, atol=atol)


def test_generate_greedy_matches_recomputation_and_crops_context():
    model, twin = make_pair()
    model.eval()
    idx, *_ = batch(B=2, T=5)
    out = model.generate(idx, max_new_tokens=15, temperature=0)  # goes past block_size=16
    assert tuple(out.shape) == (2, 20)
    assert out.requires_grad is False
    np.testing.assert_array_equal(out[:, :5].numpy(), idx.numpy())
    # Greedy decoding with the torch twin, recomputing the (cropped) context each step.
    seq = torch.tensor(idx.numpy())
    with torch.no_grad():
        for _ in range(15):
            logits, _ = twin(seq[:, -CONFIG["block_size"]:])
            seq = torch.cat([seq, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    np.testing.assert_array_equal(out.numpy(), seq.numpy())


def test_generate_sampling_is_seeded_and_respects_top_k():
    model, _ = make_pair()
    model.eval()
    idx, *_ = batch(B=2, T=3)
    a = model.generate(idx, 8, temperature=0.8, top_k=3, generator=loom.Generator().manual_seed(7))
    b = model.generate(idx, 8, temperature=0.8, top_k=3, generator=loom.Generator().manual_seed(7))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    # Every sampled token is among the 3 most likely under the model at its step.
    with loom.no_grad():
        logits, _ = model(a[:, :-1])
    top3 = np.argsort(-logits.numpy(), axis=-1)[:, :, :3]
    sampled = a.numpy()[:, 1:]
    for pos in range(2, 10):
        for row in range(2):
            assert sampled[row, pos] in top3[row, pos]
    with pytest.raises(ValueError, match="top_k"):
        model.generate(idx, 1, top_k=0)


def test_too_long_sequence_raises():
    model, _ = make_pair()
    idx = loom.zeros(1, CONFIG["block_size"] + 1, dtype=loom.int64)
    with pytest.raises(ValueError, match="block size"):
        model(idx)


def test_dropout_train_vs_eval():
    model, _ = make_pair(dropout=0.5)
    idx, *_ = batch()
    model.train()
    a, b = model(idx)[0], model(idx)[0]
    assert not np.allclose(a.detach().numpy(), b.detach().numpy())
    model.eval()
    a, b = model(idx)[0], model(idx)[0]
    np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


def test_training_steps_track_torch():
    # Plain SGD written out (optimizers are tested elsewhere): the loss curves of the twins stay together.
    model, twin = make_pair()
    losses, t_losses = [], []
    for step in range(8):
        idx, targets, t_idx, t_targets = batch(seed=step % 2)
        _, loss = model(idx, targets)
        _, t_loss = twin(t_idx, t_targets)
        model.zero_grad()
        twin.zero_grad()
        loss.backward()
        t_loss.backward()
        with loom.no_grad():
            for p in model.parameters():
                p.sub_(p.grad * 0.5)
        with torch.no_grad():
            for p in twin.parameters():
                p.sub_(p.grad * 0.5)
        losses.append(loss.item())
        t_losses.append(t_loss.item())
    np.testing.assert_allclose(losses, t_losses, rtol=1e-4)
    assert losses[-1] < losses[0]


def test_num_params_and_crop_block_size():
    model, twin = make_pair()
    assert model.num_params(non_embedding=False) == sum(p.numel() for p in twin.parameters())
    idx, *_ = batch(B=1, T=8)
    before = model(idx)[0].detach().numpy()
    model.crop_block_size(8)
    assert tuple(model.transformer.wpe.weight.shape) == (8, CONFIG["n_embd"])
    np.testing.assert_array_equal(model(idx)[0].detach().numpy(), before)
    with pytest.raises(ValueError, match="block size"):
        model(loom.zeros(1, 9, dtype=loom.int64))
