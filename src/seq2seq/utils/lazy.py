"""Names a package offers without importing their modules until first use (PEP 562 module `__getattr__`)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def homes(module: str, names: Iterable[str]) -> dict[str, str]:
    """Each of names -> the module that defines it."""
    return dict.fromkeys(names, module)


def lazy_getattr(package: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` for package: a name of `names` is imported from its home module on first use."""

    def getattr_(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(names[name]), name)

    return getattr_
