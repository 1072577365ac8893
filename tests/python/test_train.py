"""The GPT trainer (loom.train): resume equals an uninterrupted run, the command line works end to end."""
import json
import subprocess
import sys

import pytest
import safetensors.numpy

from loom.train import run
from loom.train.options import parse_args

# A small text with enough structure to learn from: Python's own reference documentation.
from pydoc_data.topics import topics

TEXT = "".join(topics[k] for k in sorted(topics))[:60_000]


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT, encoding="utf-8")
    return str(path)


def tiny_flags(corpus, out_dir, *extra):
    return ["--data", corpus, "--out-dir", str(out_dir), "--n-layer", "2", "--n-head", "2", "--n-embd", "32",
            "--block-size", "16", "--batch-size", "4", "--steps", "12", "--warmup", "3", "--eval-interval", "4",
            "--eval-batches", "2", "--dropout", "0.1", "--checkpoint-interval", "0", "--sample-chars", "20",
            "--no-progress", *extra]


def test_resume_gives_the_same_losses_step_for_step(corpus, tmp_path):
    # Dropout on, shuffled batches, warm-up + cosine schedule, AdamW state: everything resume must restore.
    uninterrupted = run.Trainer(parse_args(tiny_flags(corpus, tmp_path / "a"))).fit()
    first_half = run.Trainer(parse_args(tiny_flags(corpus, tmp_path / "b"))).fit(until=7)
    second_half = run.Trainer(parse_args(tiny_flags(corpus, tmp_path / "b", "--resume"))).fit()
    assert len(uninterrupted) == 12 and len(first_half) == 7 and len(second_half) == 5
    assert first_half + second_half == uninterrupted  # bit for bit, not approximately
    steps = [r["step"] for r in map(json.loads, open(tmp_path / "b" / "metrics.jsonl"))]
    assert steps == list(range(1, 13))


def test_resume_with_more_steps_follows_the_longer_schedule(corpus, tmp_path):
    # A run planned for 12 steps, and one planned for 6 then extended to 12: from step 7 on, both use the
    # 12-step schedule's learning rates.
    run.Trainer(parse_args(tiny_flags(corpus, tmp_path / "long"))).fit()
    run.Trainer(parse_args(tiny_flags(corpus, tmp_path / "ext", "--steps", "6"))).fit()
    resumed = run.Trainer(parse_args(tiny_flags(corpus, tmp_path / "ext", "--resume")))
    assert resumed.step == 6
    resumed.fit()
    rates = {d: [r["lr"] for r in map(json.loads, open(tmp_path / d / "metrics.jsonl"))] for d in ("long", "ext")}
    assert len(rates["ext"]) == 12
    assert rates["ext"][6:] == pytest.approx(rates["long"][6:], rel=1e-12)
    assert rates["ext"][:6] != pytest.approx(rates["long"][:6])  # the first 6 steps had the short schedule


def test_resume_needs_steps_beyond_the_checkpoint(corpus, tmp_path):
    run.Trainer(parse_args(tiny_flags(corpus, tmp_path, "--steps", "6"))).fit()
    with pytest.raises(ValueError, match="already at step 6"):
        run.Trainer(parse_args(tiny_flags(corpus, tmp_path, "--resume", "--steps", "6")))


def test_resume_refuses_a_different_architecture(corpus, tmp_path):
    run.Trainer(parse_args(tiny_flags(corpus, tmp_path))).fit(until=2)
    with pytest.raises(ValueError, match="--n-embd=32, not 64"):
        run.Trainer(parse_args(tiny_flags(corpus, tmp_path, "--resume", "--n-embd", "64")))


def test_resume_without_checkpoint_is_a_clear_error(corpus, tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        run.Trainer(parse_args(tiny_flags(corpus, tmp_path, "--resume")))


def test_command_line_end_to_end(corpus, tmp_path):
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "loom.train", *tiny_flags(corpus, out), "--prompt", "def "],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "final validation loss" in result.stdout and "--- sample" in result.stdout
    records = [json.loads(line) for line in open(out / "metrics.jsonl")]
    assert [r["step"] for r in records] == list(range(1, 13))
    assert [r["step"] for r in records if "val_loss" in r] == [4, 8, 12]
    assert records[-1]["loss"] < records[0]["loss"]
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    weights = safetensors.numpy.load_file(str(out / "checkpoint.safetensors"))  # the reference reader
    assert weights["model.transformer.wte.weight"].shape[1] == 32


@pytest.mark.parametrize("flags, message", [
    (["--n-embd", "30", "--n-head", "4"], "divisible by --n-head"),
    (["--steps", "0"], "--steps must be positive"),
    (["--dropout", "1.5"], "--dropout"),
])
def test_bad_flags_are_named(flags, message, tmp_path):
    result = subprocess.run([sys.executable, "-m", "loom.train", "--out-dir", str(tmp_path), *flags],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and message in result.stderr


def test_a_prompt_the_corpus_cannot_encode_is_refused_before_training(corpus, tmp_path):
    with pytest.raises(ValueError, match="--prompt has characters the corpus never uses"):
        run.Trainer(parse_args(tiny_flags(corpus, tmp_path, "--prompt", "\u2603")))
    assert not (tmp_path / "metrics.jsonl").exists()


def test_missing_data_file_is_named(tmp_path):
    missing = str(tmp_path / "nope.txt")
    result = subprocess.run([sys.executable, "-m", "loom.train", "--data", missing, "--out-dir", str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "nope.txt" in result.stderr
