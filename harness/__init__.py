"""The harness: data, training, evaluation and reporting drivers.

Importing it tells glibc's malloc to keep freed blocks for reuse (harness/core/allocator.py): every `python -m harness.…`
and `python -m benchmarks…` process imports this package first.
"""
from harness.core.allocator import keep_freed_memory

keep_freed_memory()
