"""Evaluation: corpus-level metrics and the lines of scores reported for them."""
