"""loom.train: train a decoder-only GPT on a text corpus from the command line (`loom-train`, `python -m loom.train`).

The pieces are importable so tests and notebooks can drive a run without the command line:
`options.parse_args` (flags and defaults), `run.Trainer` (data, model, optimizer, checkpoints, the loop),
`report` (progress bar, JSONL metrics, loss-curve PNG).
"""
import sys

from loom.train.options import parse_args


def main(argv=None):
    """Entry point of `loom-train` / `python -m loom.train`."""
    from loom.train.run import Trainer  # after parsing, so `--help` answers at once

    args = parse_args(argv)
    try:
        Trainer(args).fit()
    except (FileNotFoundError, ValueError) as error:  # a bad flag or data file: a message, not a traceback
        print(f"loom-train: error: {error}", file=sys.stderr)
        sys.exit(2)
