"""Ready-made models built from loom.nn."""
from loom.models.gpt import GPT, GPTConfig  # noqa: F401
