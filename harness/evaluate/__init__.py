"""Stage evaluate: `python -m harness.evaluate` (evaluation.py; rule `evaluate`, both tasks: lm_evaluate,
dialogue_evaluate) and `python -m harness.evaluate.interpolate` (rule `interpolate`; interpolation.py)."""
