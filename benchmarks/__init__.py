import harness  # noqa: F401 -- its allocator setting (harness/core/allocator.py) for every benchmark process
