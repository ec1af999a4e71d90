"""Modules that moved, still importable under their old names for one minor release.

``import carecollect.providers`` (and every other path in :data:`MOVED_MODULES`)
gives the module at its new place, :mod:`carecollect.plugins.providers`, with a
:class:`DeprecationWarning` that names the new path. Both names are the same
module object, so a class imported either way is the same class.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    import importlib.abc

__all__ = ["MOVED_MODULES", "install", "moved_module_name"]

#: old module path -> new module path (a package's submodules follow it).
MOVED_MODULES: dict[str, str] = {
    "carecollect.hookspecs": "carecollect.plugins.hookspecs",
    "carecollect.plugin_manager": "carecollect.plugins.manager",
    "carecollect.providers": "carecollect.plugins.providers",
    "carecollect.messaging": "carecollect.plugins.messaging",
    "carecollect.agencies": "carecollect.plugins.agencies",
    "carecollect.builtin": "carecollect.plugins.builtin",
    "carecollect.cli.config": "carecollect.run.settings_file",
}


def moved_module_name(name: str) -> str:
    """The current path of a module that may be named by its old path.

    >>> moved_module_name("carecollect.builtin.outbox")
    'carecollect.plugins.builtin.outbox'
    >>> moved_module_name("carecollect.ledger")
    'carecollect.ledger'
    """
    for old, new in MOVED_MODULES.items():
        if name == old or name.startswith(old + "."):
            return new + name[len(old) :]
    return name


class _Alias:
    # a loader by protocol (create_module, exec_module): importlib.abc would import
    # importlib.resources, a fifth of carecollect's import time

    def __init__(self, new: str) -> None:
        self.new = new

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(self.new)
        self.real_spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # the import system stamped the old name's spec on the module: give it its own back
        module.__spec__ = self.real_spec


class _MovedFinder:
    # a meta path finder by protocol (find_spec)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        new = moved_module_name(fullname)
        if new == fullname:
            return None
        warnings.warn(
            f"{fullname} moved to {new}; the old path goes away in the next minor release",
            DeprecationWarning,
            stacklevel=2,
        )
        return importlib.machinery.ModuleSpec(fullname, cast("importlib.abc.Loader", _Alias(new)))


def install() -> None:
    """Serve the old paths (idempotent; called when :mod:`carecollect` is imported)."""
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _MovedFinder())
