"""`python -m harness.train`: the train stage's command (harness/train/training.py)."""
from harness.train.training import main

raise SystemExit(main())
