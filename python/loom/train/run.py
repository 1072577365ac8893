"""One training run of the GPT trainer: data, model, optimizer, schedule, checkpoints and the loop."""
import math
import os
import sys
import time

import loom
import loom.datasets
from loom.models.gpt import GPT, GPTConfig
from loom.nn.utils import clip_grad_norm_
from loom.optim import AdamW
from loom.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR
from loom.tokenizers import CharTokenizer
from loom.train import report
from loom.utils.data import DataLoader, TensorDataset

CHECKPOINT = "checkpoint.safetensors"
TOKENIZER = "tokenizer.json"
METRICS = "metrics.jsonl"
LOSS_PNG = "loss.png"

# What must match between a checkpoint and the flags that resume it (the rest may change, e.g. --steps).
ARCHITECTURE = ("n_layer", "n_head", "n_embd", "block_size", "batch_size", "seed", "data")


def windows(tokens, block_size):
    """Non-overlapping (block_size + 1)-token rows: inputs are row[:-1], targets row[1:]."""
    count = (tokens.numel() - 1) // block_size
    if count < 1:
        raise ValueError(f"the text has {tokens.numel()} characters; need more than --block-size ({block_size})")
    starts = loom.arange(count) * block_size
    return tokens[starts.unsqueeze(1) + loom.arange(block_size + 1)]


class Trainer:
    """Trains a GPT as the flags say; `fit()` returns the per-step training losses of this invocation."""

    def __init__(self, args):
        self.args = args
        if args.threads:
            loom.set_num_threads(args.threads)
        os.makedirs(args.out_dir, exist_ok=True)
        self.path = lambda name: os.path.join(args.out_dir, name)
        resume = self._load_checkpoint() if args.resume else None

        text = loom.datasets.text_corpus(args.data)
        self.tokenizer = CharTokenizer.load(self.path(TOKENIZER)) if resume else CharTokenizer().train(text)
        if not resume:
            self.tokenizer.save(self.path(TOKENIZER))
        tokens = self.tokenizer.encode_tensor(text)
        split = int(tokens.numel() * (1 - args.val_fraction))
        self.train_rows = windows(tokens[:split], args.block_size)
        self.val_rows = windows(tokens[split:], args.block_size)
        self.corpus_chars = len(text)
        if args.sample_chars > 0:
            self._check_prompt(args.prompt)  # before training, not after it

        loom.manual_seed(args.seed)
        self.config = GPTConfig(vocab_size=self.tokenizer.vocab_size, block_size=args.block_size,
                                n_layer=args.n_layer, n_head=args.n_head, n_embd=args.n_embd, dropout=args.dropout)
        self.model = GPT(self.config)
        self.optimizer = AdamW(self._param_groups(), lr=args.lr, betas=(0.9, 0.99))
        self.scheduler = self._schedule()
        self.loader = DataLoader(TensorDataset(self.train_rows), batch_size=args.batch_size, shuffle=True,
                                 drop_last=True, generator=loom.Generator().manual_seed(args.seed))
        self.step = 0
        if resume:
            self._restore(resume)

    def _schedule(self):
        """Linear warm-up to --lr over --warmup steps, then cosine decay to --min-lr at --steps."""
        args = self.args
        return SequentialLR(self.optimizer, [
            LinearLR(self.optimizer, start_factor=1.0 / max(1, args.warmup), total_iters=max(1, args.warmup)),
            CosineAnnealingLR(self.optimizer, T_max=args.steps - args.warmup, eta_min=args.min_lr),
        ], milestones=[args.warmup])

    def _param_groups(self):
        """nanoGPT's split: weight decay on matrices (linear, embedding), none on biases and norm gains."""
        decay = [p for p in self.model.parameters() if p.dim() >= 2]
        no_decay = [p for p in self.model.parameters() if p.dim() < 2]
        return [{"params": decay, "weight_decay": self.args.weight_decay},
                {"params": no_decay, "weight_decay": 0.0}]

    # --- checkpoints -------------------------------------------------------------------------------------
    def _state(self):
        return {
            "step": self.step,
            "flags": {k: getattr(self.args, k) for k in ARCHITECTURE},
            "schedule_steps": self.args.steps,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "loader": self.loader.state_dict(),
            "rng": loom.get_rng_state(),
        }

    def save_checkpoint(self):
        loom.save(self._state(), self.path(CHECKPOINT))  # atomic: temporary file + rename

    def _load_checkpoint(self):
        path = self.path(CHECKPOINT)
        if not os.path.exists(path):
            raise FileNotFoundError(f"--resume: no checkpoint at {path} (train without --resume first)")
        state = loom.load(path)
        if state["step"] >= self.args.steps:
            raise ValueError(f"--resume: {path} is already at step {state['step']}; pass a larger --steps "
                             f"(now {self.args.steps}) to train further")
        for key in ARCHITECTURE:
            saved, now = state["flags"][key], getattr(self.args, key)
            if saved != now:
                raise ValueError(f"--resume: {path} was trained with --{key.replace('_', '-')}={saved}, "
                                 f"not {now}")
        return state

    def _restore(self, state):
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if state["schedule_steps"] == self.args.steps:
            self.scheduler.load_state_dict(state["scheduler"])
        else:
            # --resume with another --steps: the schedule is rebuilt for the new length and replayed to the
            # checkpoint's step, so the rate is what a run planned that long from the start would use now.
            for group in self.optimizer.param_groups:
                group["lr"] = self.args.lr
                group.pop("initial_lr", None)
            self.scheduler = self._schedule()
            for _ in range(state["step"]):
                self.scheduler.step()
        self.loader.load_state_dict(state["loader"])
        loom.set_rng_state(state["rng"])
        self.step = state["step"]

    # --- the loop ----------------------------------------------------------------------------------------
    def batches(self):
        """Training batches forever, epoch after epoch (the loader's state tracks where we are)."""
        while True:
            for (rows,) in self.loader:
                yield rows[:, :-1], rows[:, 1:]

    @loom.no_grad()
    def evaluate(self):
        """Mean loss over --eval-batches fixed, evenly spaced validation batches (the same every time)."""
        self.model.eval()
        args = self.args
        n = self.val_rows.shape[0]
        picks = loom.linspace(0, n - 1, args.eval_batches * args.batch_size).to(loom.int64)
        total = 0.0
        for i in range(args.eval_batches):
            rows = self.val_rows[picks[i * args.batch_size:(i + 1) * args.batch_size]]
            total += self.model(rows[:, :-1], rows[:, 1:])[1].item()
        self.model.train()
        return total / args.eval_batches

    def fit(self, until=None):
        """Trains to --steps (or stops after step `until`, as an interrupted run would, checkpoint included)."""
        args = self.args
        until = args.steps if until is None else min(until, args.steps)
        metrics = report.MetricsLog(self.path(METRICS), resume_step=self.step if args.resume else None)
        progress = report.Progress(args.steps, self.step, enabled=not args.no_progress and sys.stderr.isatty())
        progress.log(self._describe())
        rate = report.Throughput()
        tokens_per_step = args.batch_size * args.block_size
        losses, val_loss, start = [], None, time.perf_counter()
        batches = self.batches()
        self.model.train()
        while self.step < until:
            inputs, targets = next(batches)
            _, loss = self.model(inputs, targets)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if args.grad_clip > 0:
                clip_grad_norm_(self.model.parameters(), args.grad_clip)
            lr = self.optimizer.param_groups[0]["lr"]
            self.optimizer.step()
            self.scheduler.step()
            self.step += 1
            value = loss.item()
            if not math.isfinite(value):
                raise FloatingPointError(f"loss became {value} at step {self.step}; try a lower --lr")
            losses.append(value)
            record = {"step": self.step, "loss": value, "lr": lr, "tokens_per_s": rate.tick(tokens_per_step),
                      "elapsed_s": time.perf_counter() - start}
            if self.step % args.eval_interval == 0 or self.step == args.steps:
                val_loss = record["val_loss"] = self.evaluate()
                progress.log(f"step {self.step:5d}  train loss {value:.4f}  val loss {val_loss:.4f}  "
                             f"({record['elapsed_s']:.0f} s)")
            metrics.write(record)
            progress.update(value, record["tokens_per_s"], val_loss)
            if args.checkpoint_interval and self.step % args.checkpoint_interval == 0:
                self.save_checkpoint()
        progress.close()
        self.save_checkpoint()
        if self.step == args.steps:
            self._finish(val_loss, time.perf_counter() - start)
        return losses

    def _describe(self):
        a = self.args
        return (f"loom-train: {self.model.num_params():,} parameters ({a.n_layer} layers, {a.n_head} heads, "
                f"width {a.n_embd}, context {a.block_size}), vocabulary {self.tokenizer.vocab_size} characters, "
                f"corpus {self.corpus_chars:,} characters, {loom.get_num_threads()} threads"
                + (f", resuming at step {self.step}" if a.resume else ""))

    def _finish(self, val_loss, seconds):
        a = self.args
        report.plot_loss_curve(self.path(METRICS), self.path(LOSS_PNG),
                               f"loom GPT, {a.n_layer}x{a.n_embd}, context {a.block_size}")
        if val_loss is not None:
            print(f"final validation loss: {val_loss:.4f} nats/char after {self.step} steps ({seconds:.0f} s)")
        print(f"checkpoint: {self.path(CHECKPOINT)}  metrics: {self.path(METRICS)}  loss curve: {self.path(LOSS_PNG)}")
        if a.sample_chars > 0:
            print(f"--- sample (temperature {a.temperature}) ---")
            print(self.sample(a.prompt, a.sample_chars))

    def _check_prompt(self, prompt):
        unknown = sorted(set(prompt) - set(self.tokenizer.chars))
        if unknown:
            raise ValueError(f"--prompt has characters the corpus never uses: {''.join(unknown)!r}")

    def sample(self, prompt, chars):
        """Continues `prompt` by `chars` characters drawn from the model."""
        self._check_prompt(prompt)
        idx = self.tokenizer.encode_tensor(prompt or "\n").unsqueeze(0)
        out = self.model.generate(idx, chars, temperature=self.args.temperature, top_k=self.args.top_k)
        return self.tokenizer.decode(out[0].tolist())
