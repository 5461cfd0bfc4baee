import harness  # noqa: F401 -- its allocator setting (harness/allocator.py) for every benchmark process
