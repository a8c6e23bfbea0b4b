"""Utilities below every other room: atomic files, device and precision, process settings, gc pausing, plots, names
offered lazily by packages, registries of named entries, and the module paths of the flat layout."""
