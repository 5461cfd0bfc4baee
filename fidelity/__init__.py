"""Side by side with the original TWR-VAE code: the language-model learning curve (lm) and the dialogue epoch
(dialogue). Above the harness; nothing imports it."""
import harness  # noqa: F401 -- its allocator setting (harness/core/allocator.py) for every process
