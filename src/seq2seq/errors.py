"""Exceptions raised for bad input: each carries a one-line message naming the file, line and problem."""


class Seq2SeqError(Exception):
    """Base class of the errors the CLI reports as one line and a non-zero exit."""


class DataError(Seq2SeqError):
    """Malformed, empty or unreadable data."""


class ConfigError(Seq2SeqError):
    """Unknown configuration key or bad value."""


class CheckpointError(Seq2SeqError):
    """Missing, corrupted or incompatible checkpoint."""


class RunDirectoryError(Seq2SeqError):
    """A run directory that cannot be written, or that another training is writing."""


class TrainingError(Seq2SeqError):
    """Training that cannot go on: a loss that stays NaN or infinite, weights that are no longer finite."""
