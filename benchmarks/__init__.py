import harness  # noqa: F401 -- its allocator setting (harness/__init__.py) before any tensor exists
