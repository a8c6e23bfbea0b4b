"""Evaluation: corpus-level metrics, the lines of scores reported for them, and dynamic evaluation of language
models (adapting as they read)."""
