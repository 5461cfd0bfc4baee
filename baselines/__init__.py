"""Baseline methods. Each module here registers one method with `harness.methods.registry.register_method`; the
registry imports every module of this package, so a new baseline is one new file (see docs/adding_a_method.md).
"""
