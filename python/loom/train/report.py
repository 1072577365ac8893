"""What a run shows and leaves behind: a live progress bar, metrics as JSON lines, a loss-curve PNG."""
import json
import os
import time

from tqdm import tqdm


class Progress:
    """A live bar (step, loss, tokens/s, ETA) — or one log line per validation when the output is not a
    terminal or the user asked for --no-progress."""

    def __init__(self, total, initial, enabled):
        self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, disable=not enabled,
                        smoothing=0.1, bar_format="{percentage:3.0f}%|{bar:24}| step {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]")
        self.enabled = enabled

    def update(self, loss, tokens_per_s, val_loss=None):
        postfix = {"loss": f"{loss:.3f}", "tok/s": f"{tokens_per_s:,.0f}"}
        if val_loss is not None:
            postfix["val"] = f"{val_loss:.3f}"
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.update(1)

    def log(self, message):
        """A line that stays: above the bar when there is one."""
        if self.enabled:
            self.bar.write(message)
        else:
            print(message, flush=True)

    def close(self):
        self.bar.close()


class MetricsLog:
    """metrics.jsonl: one JSON object per line ({"step", "loss", "lr", "tokens_per_s", "elapsed_s"}, plus
    "val_loss" on validation steps). Appends on resume, after dropping lines past the resumed step, so the file
    always describes one run."""

    def __init__(self, path, resume_step=None):
        self.path = path
        if resume_step is None:
            open(path, "w").close()
        else:
            kept = [r for r in read_metrics(path) if r["step"] <= resume_step]
            with open(path, "w") as f:
                f.writelines(json.dumps(r) + "\n" for r in kept)

    def write(self, record):
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")


def read_metrics(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def plot_loss_curve(metrics_path, png_path, title):
    """Training loss (per step, and smoothed) and validation loss against step, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(metrics_path)
    steps = [r["step"] for r in records if "loss" in r]
    losses = [r["loss"] for r in records if "loss" in r]
    val = [(r["step"], r["val_loss"]) for r in records if "val_loss" in r]
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    ax.plot(steps, losses, color="tab:blue", alpha=0.3, linewidth=0.8, label="train (per step)")
    if len(losses) >= 20:
        window = max(1, len(losses) // 50)
        smooth = [sum(losses[max(0, i - window + 1):i + 1]) / len(losses[max(0, i - window + 1):i + 1])
                  for i in range(len(losses))]
        ax.plot(steps, smooth, color="tab:blue", linewidth=1.5, label=f"train (mean of {window})")
    if val:
        ax.plot(*zip(*val), "o-", color="tab:orange", linewidth=1.5, markersize=3, label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats/char)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    tmp = png_path + f".tmp{os.getpid()}"
    fig.savefig(tmp, format="png")
    plt.close(fig)
    os.replace(tmp, png_path)


class Throughput:
    """Tokens per second over the last few steps (the bar's own rate counts steps, not tokens)."""

    def __init__(self, window=20):
        self.window = window
        self.times = []

    def tick(self, tokens):
        now = time.perf_counter()
        self.times.append((now, tokens))
        self.times = self.times[-self.window:]
        if len(self.times) < 2:
            return 0.0
        span = self.times[-1][0] - self.times[0][0]
        return sum(t for _, t in self.times[1:]) / span if span > 0 else 0.0
