"""``carecollect.daily_run`` is a deprecated alias: every name it held still resolves, with a warning.

The daily run moved into the modules of :mod:`carecollect.run`; the old module forwards each
name to its new home for one minor release and says where it went.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings

import pytest

import carecollect.daily_run as daily_run
import carecollect.run as run


def test_every_name_forwards_to_the_module_that_now_holds_it() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for name, module in daily_run.MOVED.items():
            assert getattr(daily_run, name) is getattr(
                importlib.import_module(f"carecollect.run.{module}"), name
            )


def test_each_name_warns_once_naming_its_new_module() -> None:
    # a fresh interpreter: the alias warns once per name and process
    code = (
        "import warnings\n"
        "import carecollect.daily_run as d\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    first = d.plan_run\n"
        "    again = d.plan_run\n"
        "    other = d._prescreen\n"
        "for w in caught:\n"
        "    print(w.category.__name__, w.message)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == [
        "DeprecationWarning carecollect.daily_run.plan_run moved to carecollect.run.planning.plan_run;"
        " carecollect.daily_run is deprecated",
        "DeprecationWarning carecollect.daily_run._prescreen moved to carecollect.run.planning._prescreen;"
        " carecollect.daily_run is deprecated",
    ]


def test_the_warning_reaches_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(daily_run, "_warned", set())  # as in a process that never read the name
    with pytest.warns(DeprecationWarning, match=r"carecollect\.run\.execute\.last_run_at"):
        assert daily_run.last_run_at is run.last_run_at


def test_a_name_it_never_held_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        daily_run.no_such_name  # noqa: B018


def test_every_public_name_of_the_old_module_is_public_in_the_package() -> None:
    public = {
        n for n in daily_run.MOVED if not n.startswith("_") and not n.isupper() and n != "Conversations"
    }
    assert public <= set(run.__all__)
    for name in run.__all__:
        assert getattr(run, name) is getattr(
            importlib.import_module(f"carecollect.run.{run._LAZY[name]}"), name
        )


def test_importing_the_package_loads_none_of_its_modules() -> None:
    code = (
        "import sys, carecollect.run\nprint(sorted(m for m in sys.modules if m.startswith('carecollect.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['carecollect._moved', 'carecollect.run']"  # _moved: old module paths, tiny
