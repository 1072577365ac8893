"""Random hostile calls across the public API (tests/fuzz/api.py): every call must either succeed or raise an
ordinary Python exception; nothing may crash the interpreter or hang. The calls run in a child interpreter, so a
crash is reported with the exact call and the command that reproduces it.

A longer run: python -m tests.fuzz.api --calls 1000000 --seed S   (from the repository root)
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tests.fuzz import api  # noqa: E402

# Calls per seed: 2 to 15 s each in the release build on 2 cores; `make sanitize-test` sets fewer.
CALLS = int(os.environ.get("LOOM_FUZZ_CALLS", "20000"))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_hostile_calls_do_not_crash(seed):
    summary = api.campaign(seed, 0, CALLS, timeout=120, log=lambda line: None)
    assert summary["totals"]["calls"] == CALLS
    assert not summary["crashes"] and not summary["unexpected"], api.report(summary)
    # The calls reach the kernels: a good share return a result instead of failing argument checks.
    assert summary["totals"].get("returned", 0) > CALLS // 5, api.report(summary)


def test_fuzzer_catches_a_crash_and_names_the_call(monkeypatch):
    """The parent notices a child that dies, reports the call it died in and goes on after it."""
    monkeypatch.setenv("LOOM_FUZZ_ABORT_AT", "5")
    summary = api.campaign(3, 0, 10, timeout=60, log=lambda line: None)
    assert [c["index"] for c in summary["crashes"]] == [5]
    crash = summary["crashes"][0]
    assert crash["how"] == "killed by SIGABRT" and crash["alone"]
    assert crash["line"] == api.call_line(api.discover_targets(), 3, 5)[0]
    assert summary["totals"]["calls"] == 10
    assert "--seed 3 --start 5 --calls 1" in api.report(summary)


def test_fuzzer_covers_the_public_api():
    targets = {label for label, *_ in api.discover_targets()}
    for name in ("loom.tensor", "loom.as_strided", "loom.nn.functional.fold", "loom.avg_pool2d",
                 "loom.nn.functional.cross_entropy", "loom.nn.init.kaiming_uniform_",
                 "Tensor.size", "Tensor.__setitem__", "Tensor.numpy", "Tensor.grad"):
        assert name in targets
    assert not targets & set(api.EXCLUDED)
    assert len(targets) > 500
    # A call depends on (seed, index) alone, so a reproducer regenerates it.
    lines = [api.call_line(api.discover_targets(), 1, i)[0] for i in range(50)]
    assert lines == [api.call_line(api.discover_targets(), 1, i)[0] for i in range(50)]
    assert len(set(lines)) == 50


def test_set_num_threads_validation():
    import loom

    before = loom.get_num_threads()
    for bad in (0, -1):
        with pytest.raises((ValueError, RuntimeError)):
            loom.set_num_threads(bad)
    with pytest.raises((TypeError, OverflowError, ValueError)):
        loom.set_num_threads(2 ** 62)
    with pytest.raises(TypeError):
        loom.set_num_threads("2")
    assert loom.get_num_threads() == before
