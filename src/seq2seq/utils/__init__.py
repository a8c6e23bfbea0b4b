"""Utilities below every other room: atomic files, device and precision, process settings, gc pausing, plots."""
