"""Stage train: `python -m harness.train` (training.py; the workflow's rule `train`), with its optimiser, learning-rate
schedule, early stopping and the resolved budget it prints."""
