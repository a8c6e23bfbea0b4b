"""A table of named entries (tasks, model kinds), each registered by its own module when that module is imported."""

from __future__ import annotations

import importlib
from typing import Generic, TypeVar

from seq2seq.errors import ConfigError

Entry = TypeVar("Entry")


class Registry(Generic[Entry]):
    """Entries by name. A built-in entry's module is imported when the entry is first asked for (`get`), so using
    one entry imports its module only; entries registered since join the built-in ones."""

    def __init__(self, key: str, noun: str, built_in: dict[str, str]) -> None:
        """key: the setting that names an entry (in errors); noun: what an entry is; built_in: name -> module."""
        self.key, self.noun, self.built_in = key, noun, built_in
        self.entries: dict[str, Entry] = {}

    def register(self, name: str, entry: Entry) -> Entry:
        """Add entry as name (replacing an entry of that name) and return it."""
        self.entries[name] = entry
        return entry

    def remove(self, name: str) -> None:
        """Forget the entry registered as name."""
        self.entries.pop(name, None)

    def get(self, name: str) -> Entry:
        """The entry named name (a ConfigError names the known ones)."""
        if name not in self.entries and name in self.built_in:
            importlib.import_module(self.built_in[name])
        if name not in self.entries:
            raise ConfigError(f"{self.key}: unknown {self.noun} {name!r} (known: {', '.join(self.names())})")
        return self.entries[name]

    def names(self) -> list[str]:
        """The built-in names, then those registered since."""
        return list(dict.fromkeys([*self.built_in, *self.entries]))
