"""Reproduction campaigns on the CPU and audits of their results: paper-recipe reference runs (cpu_reference), the
likelihood audit (likelihood_audit), iVAE's dual-KL stability (ivae_stability). Above the harness; nothing imports it."""
import harness  # noqa: F401 -- its allocator setting (harness/core/allocator.py) for every process
