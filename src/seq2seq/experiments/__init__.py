"""Experiments: variants of a config compared under one time budget, and training curves."""
