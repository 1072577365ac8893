"""Random sampling: the Philox generator against known answers and an independent Python implementation,
reproducibility, independence from the thread count, and distribution moments."""
import math

import numpy as np
import pytest

import loom

# Known-answer vectors of Philox4x32-10 from the Random123 distribution (kat_vectors).
KAT = [
    ([0, 0, 0, 0], (0, 0), [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]),
    ([0xFFFFFFFF] * 4, (0xFFFFFFFF, 0xFFFFFFFF), [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]),
    ([0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344], (0xA4093822, 0x299F31D0),
     [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1]),
]


def philox_reference(counter, key):
    """Philox4x32-10 written from the paper (Salmon et al., SC'11), independent of loom's C++."""
    m0, m1, w0, w1, mask = 0xD2511F53, 0xCD9E8D57, 0x9E3779B9, 0xBB67AE85, 0xFFFFFFFF
    c0, c1, c2, c3 = counter
    k0, k1 = key
    for _ in range(10):
        p0, p1 = m0 * c0, m1 * c2
        c0, c1, c2, c3 = ((p1 >> 32) ^ c1 ^ k0) & mask, p1 & mask, ((p0 >> 32) ^ c3 ^ k1) & mask, p0 & mask
        k0, k1 = (k0 + w0) & mask, (k1 + w1) & mask
    return [c0, c1, c2, c3]


@pytest.mark.parametrize("counter,key,expected", KAT)
def test_philox_known_answers(counter, key, expected):
    assert philox_reference(counter, key) == expected
    assert loom._C._philox4x32(counter, key[0] | (key[1] << 32)) == expected


def test_philox_matches_reference_on_random_inputs():
    rng = np.random.default_rng(0)
    for _ in range(50):
        counter = [int(v) for v in rng.integers(0, 2**32, size=4)]
        key = (int(rng.integers(0, 2**32)), int(rng.integers(0, 2**32)))
        assert loom._C._philox4x32(counter, key[0] | (key[1] << 32)) == philox_reference(counter, key)


def test_uniform_uses_the_documented_stream():
    """Element i of rand() is the top 53 bits of Philox block (offset + i//2), lanes 2*(i%2), 2*(i%2)+1."""
    loom.manual_seed(1234)
    values = loom.rand(6, dtype=loom.float64).tolist()
    for i, v in enumerate(values):
        out = philox_reference([i // 2, 0, 0, 0], (1234, 0))
        lane = 2 * (i % 2)
        bits = (out[lane] << 32) | out[lane + 1]
        assert v == (bits >> 11) * 2.0**-53


def test_same_seed_same_values_and_streams_advance():
    loom.manual_seed(7)
    a, b = loom.randn(100), loom.randn(100)
    loom.manual_seed(7)
    c, d = loom.randn(100), loom.randn(100)
    assert a.tolist() == c.tolist() and b.tolist() == d.tolist()
    assert a.tolist() != b.tolist()


def test_generator_objects_and_state():
    g = loom.Generator().manual_seed(3)
    first = loom.rand(10, generator=g).tolist()
    state = g.get_state()
    second = loom.rand(10, generator=g).tolist()
    g.set_state(state)
    assert loom.rand(10, generator=g).tolist() == second
    assert first != second
    g2 = loom.Generator().manual_seed(3)
    assert loom.rand(10, generator=g2).tolist() == first


def test_results_do_not_depend_on_thread_count():
    old = loom.get_num_threads()
    try:
        loom.set_num_threads(1)
        loom.manual_seed(5)
        one = loom.randn(200000).numpy().copy()
        loom.set_num_threads(2)
        loom.manual_seed(5)
        two = loom.randn(200000).numpy().copy()
    finally:
        loom.set_num_threads(old)
    np.testing.assert_array_equal(one, two)


def test_distribution_moments():
    loom.manual_seed(0)
    n = 200000
    u = loom.rand(n, dtype=loom.float64).numpy()
    assert u.min() >= 0 and u.max() < 1
    assert abs(u.mean() - 0.5) < 5 / math.sqrt(12 * n)
    z = loom.randn(n, dtype=loom.float64).numpy()
    assert abs(z.mean()) < 5 / math.sqrt(n) and abs(z.var() - 1) < 0.02
    # Normal tails: about 4.55% beyond 2 sigma.
    assert abs((np.abs(z) > 2).mean() - 0.0455) < 0.003
    r = loom.randint(3, 9, (n,)).numpy()
    assert r.min() == 3 and r.max() == 8
    counts = np.bincount(r - 3) / n
    assert np.all(np.abs(counts - 1 / 6) < 0.01)
    b = loom.bernoulli(loom.full((n,), 0.25, dtype=loom.float64)).numpy()
    assert set(np.unique(b)) <= {0.0, 1.0} and abs(b.mean() - 0.25) < 0.01


def test_randperm_is_a_permutation():
    p = loom.randperm(1000).numpy()
    assert sorted(p.tolist()) == list(range(1000))
    assert p.tolist() != list(range(1000))


def test_in_place_samplers_and_errors():
    t = loom.empty(1000)
    t.uniform_(-3, -2)
    assert -3 <= t.numpy().min() and t.numpy().max() < -2
    t.normal_(10, 0.1)
    assert abs(t.numpy().mean() - 10) < 0.05
    t.bernoulli_(0.5)
    assert set(np.unique(t.numpy())) <= {0.0, 1.0}
    with pytest.raises(ValueError):
        loom.randint(5, 5, (3,))
    with pytest.raises(ValueError):
        loom.empty(3).normal_(0, -1)
    with pytest.raises(ValueError):
        loom.bernoulli(loom.full((3,), 1.5))
    with pytest.raises(TypeError):
        loom.rand(3, dtype=loom.int64)
    with pytest.raises(ValueError):
        loom.randn(-1)
