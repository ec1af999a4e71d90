"""Every error carecollect raises is defined in :mod:`carecollect.errors` (one home, one tree).

The modules that raised them first re-export them, so ``from carecollect.store.base import
NotFound`` keeps working and is the same class.
"""

from __future__ import annotations

import builtins
import importlib
import inspect
import pkgutil

import pytest

import carecollect
from carecollect import errors

_BUILTIN_ERRORS = {
    v for v in vars(builtins).values() if isinstance(v, type) and issubclass(v, BaseException)
} - {BaseException, Exception}


def _exception_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(carecollect.__path__, "carecollect."):
        if info.name == "carecollect.daily_run":  # the deprecated alias: each name it forwards warns
            continue
        try:
            module = importlib.import_module(info.name)
        except ImportError as exc:  # an extra this environment does not install
            if (exc.name or "").startswith("carecollect"):
                raise
            continue
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__.startswith("carecollect"):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return found


def test_every_public_error_lives_in_errors_py() -> None:
    elsewhere = sorted(
        name
        for name, cls in _exception_classes().items()
        if cls.__module__ != "carecollect.errors" and not cls.__name__.startswith("_")
    )
    assert not elsewhere, f"errors defined outside carecollect/errors.py: {elsewhere}"


def test_every_error_has_the_root_and_a_builtin() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        if not (isinstance(cls, type) and issubclass(cls, BaseException)) or cls is errors.CareCollectError:
            continue
        assert issubclass(cls, errors.CareCollectError), name
        assert _BUILTIN_ERRORS & set(cls.__mro__), f"{name} inherits no builtin exception besides Exception"


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("carecollect.store.base", "NotFound"),
        ("carecollect.store.base", "RunLocked"),
        ("carecollect.store.base", "StoreError"),
        ("carecollect.store", "NotFound"),
        ("carecollect.plugins.providers", "WebhookError"),
        ("carecollect.plugins.providers", "WebhookSignatureInvalid"),
        ("carecollect.plugins.providers", "WebhookExpired"),
        ("carecollect.importers.records", "ImportFailed"),
        ("carecollect.importers.records", "ImportProblem"),
        ("carecollect.messages.render", "MissingTranslation"),
        ("carecollect.messages", "MissingTranslation"),
        ("carecollect.messages.checks", "MessageCheckFailed"),
        ("carecollect.messages.paylinks", "PayLinkError"),
        ("carecollect.messages.paylinks", "PayLinkExpired"),
        ("carecollect.messages.paylinks", "PayLinkInvalid"),
        ("carecollect.messages.paylinks", "PayLinkUsed"),
        ("carecollect.run.workers", "RunWorkerError"),
    ],
)
def test_the_old_import_path_gives_the_same_class(module: str, name: str) -> None:
    assert getattr(importlib.import_module(module), name) is getattr(errors, name)
