"""`python -m harness.evaluate`: the evaluate stage's command (harness/evaluate/evaluation.py)."""
from harness.evaluate.evaluation import main

raise SystemExit(main())
