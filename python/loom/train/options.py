"""The trainer's command-line flags. Defaults train the README's main job: about 3 minutes on a 2-core CPU."""
import argparse


def build_parser():
    p = argparse.ArgumentParser(
        prog="loom-train",
        description="Train a character-level decoder-only GPT with loom, validate it, checkpoint it and sample from it.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    data = p.add_argument_group("data")
    data.add_argument("--data", metavar="FILE", default=None,
                      help="UTF-8 text file to train on; default: the built-in English corpus (Debian package "
                           "'fortunes')")
    data.add_argument("--val-fraction", type=float, default=0.1, help="share of the text held out for validation")

    model = p.add_argument_group("model")
    model.add_argument("--n-layer", type=int, default=3, help="transformer blocks")
    model.add_argument("--n-head", type=int, default=4, help="attention heads per block")
    model.add_argument("--n-embd", type=int, default=96, help="model width (divisible by --n-head)")
    model.add_argument("--block-size", type=int, default=64, help="context length in characters")
    model.add_argument("--dropout", type=float, default=0.0, help="dropout probability")

    train = p.add_argument_group("training")
    train.add_argument("--steps", type=int, default=900, help="optimizer steps")
    train.add_argument("--batch-size", type=int, default=32, help="sequences per step")
    train.add_argument("--lr", type=float, default=5e-3, help="peak learning rate (AdamW)")
    train.add_argument("--min-lr", type=float, default=5e-4, help="learning rate at the end of the cosine decay")
    train.add_argument("--warmup", type=int, default=50, help="linear warm-up steps")
    train.add_argument("--weight-decay", type=float, default=0.1, help="AdamW weight decay (matrices only)")
    train.add_argument("--grad-clip", type=float, default=1.0, help="clip the gradient norm to this (0: off)")
    train.add_argument("--seed", type=int, default=1337, help="seeds weights, batches and dropout")
    train.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")

    run = p.add_argument_group("evaluation, checkpoints and output")
    run.add_argument("--eval-interval", type=int, default=100, help="steps between validation passes")
    run.add_argument("--eval-batches", type=int, default=20, help="batches per validation pass")
    run.add_argument("--out-dir", default="runs/gpt", help="where checkpoint, metrics.jsonl and loss.png go")
    run.add_argument("--checkpoint-interval", type=int, default=250, help="steps between checkpoints (0: end only)")
    run.add_argument("--resume", action="store_true", help="continue from OUT_DIR/checkpoint.safetensors")
    run.add_argument("--prompt", default="The ", help="text to continue when sampling at the end")
    run.add_argument("--sample-chars", type=int, default=300, help="characters to sample at the end (0: none)")
    run.add_argument("--temperature", type=float, default=0.8, help="sampling temperature")
    run.add_argument("--top-k", type=int, default=None, help="sample only from the k most likely characters")
    run.add_argument("--no-progress", action="store_true", help="log lines instead of a live progress bar (also when stderr is not a terminal)")
    return p


def parse_args(argv=None):
    """Parses and validates the flags; errors name the flag."""
    p = build_parser()
    args = p.parse_args(argv)
    positive = ["n_layer", "n_head", "n_embd", "block_size", "steps", "batch_size", "eval_batches", "eval_interval"]
    for name in positive:
        if getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if args.n_embd % args.n_head:
        p.error(f"--n-embd ({args.n_embd}) must be divisible by --n-head ({args.n_head})")
    if not 0.0 <= args.dropout < 1.0:
        p.error(f"--dropout must be in [0, 1), got {args.dropout}")
    if not 0.0 < args.val_fraction < 1.0:
        p.error(f"--val-fraction must be in (0, 1), got {args.val_fraction}")
    if args.lr <= 0 or args.min_lr < 0 or args.min_lr > args.lr:
        p.error(f"need 0 <= --min-lr <= --lr and --lr > 0, got lr={args.lr} min-lr={args.min_lr}")
    if args.warmup < 0 or args.warmup >= args.steps:
        p.error(f"--warmup must be in [0, --steps), got {args.warmup}")
    if args.checkpoint_interval < 0:
        p.error(f"--checkpoint-interval must be >= 0, got {args.checkpoint_interval}")
    if args.temperature <= 0:
        p.error(f"--temperature must be positive, got {args.temperature}")
    return args
