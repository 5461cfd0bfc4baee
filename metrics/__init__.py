"""Evaluation metrics as small pure functions, each citing its definition."""
