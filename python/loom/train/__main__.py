"""`python -m loom.train`: the GPT trainer (see loom.train.main)."""
from loom.train import main

main()
