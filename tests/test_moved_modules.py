"""Modules that moved (into carecollect.plugins, the settings file beside the run's settings) stay
importable under their old paths, with a warning."""

from __future__ import annotations

import subprocess
import sys

import pytest

from carecollect._moved import MOVED_MODULES
from carecollect.plugins.manager import make_plugin_manager


@pytest.mark.parametrize("old", sorted(MOVED_MODULES))
def test_an_old_path_warns_and_gives_the_same_module(old: str) -> None:
    # a fresh interpreter: the old name must not be in sys.modules already
    code = (
        "import importlib, warnings\n"
        "warnings.simplefilter('error')\n"
        f"new = importlib.import_module({MOVED_MODULES[old]!r})\n"
        "warnings.simplefilter('always')\n"
        "with warnings.catch_warnings(record=True) as seen:\n"
        f"    old = importlib.import_module({old!r})\n"
        "assert old is new, (old, new)\n"
        f"assert new.__spec__.name == {MOVED_MODULES[old]!r}, new.__spec__\n"
        "assert [w.category.__name__ for w in seen] == ['DeprecationWarning'], seen\n"
        f"assert {MOVED_MODULES[old]!r} in str(seen[0].message)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_class_imported_by_the_old_path_is_the_same_class() -> None:
    code = (
        "import warnings\n"
        "warnings.simplefilter('ignore')\n"
        "from carecollect.messaging import RenderedMessage as A\n"
        "from carecollect.plugins.messaging import RenderedMessage as B\n"
        "from carecollect.builtin.outbox import OutboxChannel as C\n"
        "from carecollect.plugins.builtin.outbox import OutboxChannel as D\n"
        "assert A is B and C is D\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_builtin_blocked_by_its_old_name_stays_blocked() -> None:
    pm = make_plugin_manager(load_entrypoints=False, blocked=["carecollect.builtin.outbox"])
    assert pm.is_blocked("carecollect.plugins.builtin.outbox")
    assert pm.get_plugin("carecollect.plugins.builtin.outbox") is None
