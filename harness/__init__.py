"""The harness: data, training, evaluation and reporting drivers.

Importing it asks PyTorch's CPU allocator for transparent huge pages (THP_MEM_ALLOC_ENABLE=1: blocks of 2 MB and
more are 2 MB-aligned and madvise'd), unless the environment already sets the variable. A training step allocates
and frees tens of MB of gradients and blocks of logits per batch; with 4 KB pages each fresh block is ~10^4 page
faults, about 100,000 per benchmark pass (~13 % of the bf16 step on 2 CPU cores, README "Speed"). It changes where
memory lies, never a value. PyTorch reads the variable at its first allocation, so this must run before any tensor
exists: every `python -m harness.…` and `python -m benchmarks…` process imports this package first.
"""
import os

os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
