"""Renamed public names, kept under their old name for one minor release.

When a public name gets a more precise one, the old name stays importable from its old
module for one minor release: a module ``__getattr__`` (PEP 562) built by :func:`renamed`
hands out the new object and warns with :class:`DeprecationWarning`, naming the new home.
:data:`RENAMED` lists every such alias, so the tests can prove each one warns and still works.

>>> import warnings
>>> from carecollect.relief import snapshot
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     old = snapshot.AccountSnapshot
>>> old is snapshot.GateSnapshot, caught[0].category.__name__
(True, 'DeprecationWarning')
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["RENAMED", "renamed"]

#: ``(old module, old name) -> (new module, new name)`` for every deprecated alias.
RENAMED: dict[tuple[str, str], tuple[str, str]] = {}

#: The release the aliases go away in.
REMOVED_IN = "0.3"


def renamed(module: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that serves old names with a :class:`DeprecationWarning`.

    :param module: the old module (``__name__`` of the caller).
    :param names: old name -> new place, ``"carecollect.pkg.module:NewName"``; the new module
        is imported on first use of the old name, so an alias never adds an import at load time.
    :return: the function to bind as the module's ``__getattr__``.
    """
    table: dict[str, tuple[str, str]] = {}
    for old, target in names.items():
        new_module, _, new_name = target.partition(":")
        table[old] = (new_module, new_name)
        RENAMED[(module, old)] = (new_module, new_name)

    def __getattr__(name: str) -> Any:
        try:
            new_module, new_name = table[name]
        except KeyError:
            raise AttributeError(f"module {module!r} has no attribute {name!r}") from None
        warnings.warn(
            f"{module}.{name} is deprecated and goes away in carecollect {REMOVED_IN}; "
            f"use {new_module}.{new_name}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(new_module), new_name)

    return __getattr__
