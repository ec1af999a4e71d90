"""Write the intersphinx inventories the docs link through, so the build needs no network.

The inventories of docs.python.org, attrs, pluggy and babel cannot be
downloaded where the docs are built, so this script writes small ones (Sphinx
inventory format 2) holding the objects these docs actually refer to, each
with its address on the project's published documentation. Add a name here
when a page or a docstring starts to refer to a new outside object, then run::

    python docs/_inventories/make_inventories.py

``tests/test_docs.py`` checks that the files in the repository are what this
script writes.
"""

from __future__ import annotations

import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent

# project -> (title, version, [(name, domain:role, uri relative to the docs root)])
_PY = "library/"
INVENTORIES: dict[str, tuple[str, str, list[tuple[str, str, str]]]] = {
    "python": (
        "Python",
        "3.13",
        [
            (
                "collections.abc.Collection",
                "py:class",
                _PY + "collections.abc.html#collections.abc.Collection",
            ),
            ("collections.abc.Container", "py:class", _PY + "collections.abc.html#collections.abc.Container"),
            (
                "contextlib.AbstractContextManager",
                "py:class",
                _PY + "contextlib.html#contextlib.AbstractContextManager",
            ),
            ("decimal", "py:module", _PY + "decimal.html#module-decimal"),
            ("enum.IntEnum", "py:class", _PY + "enum.html#enum.IntEnum"),
            ("fractions.Fraction", "py:class", _PY + "fractions.html#fractions.Fraction"),
            ("os.PathLike", "py:class", _PY + "os.html#os.PathLike"),
            ("smtplib", "py:module", _PY + "smtplib.html#module-smtplib"),
            ("types.ModuleType", "py:class", _PY + "types.html#types.ModuleType"),
            ("max", "py:function", _PY + "functions.html#max"),
            ("min", "py:function", _PY + "functions.html#min"),
            ("True", "py:data", _PY + "constants.html#True"),
            ("False", "py:data", _PY + "constants.html#False"),
            ("None", "py:data", _PY + "constants.html#None"),
            ("collections.abc.Callable", "py:class", _PY + "collections.abc.html#collections.abc.Callable"),
            ("collections.abc.Iterable", "py:class", _PY + "collections.abc.html#collections.abc.Iterable"),
            ("collections.abc.Iterator", "py:class", _PY + "collections.abc.html#collections.abc.Iterator"),
            ("collections.abc.Mapping", "py:class", _PY + "collections.abc.html#collections.abc.Mapping"),
            ("collections.abc.Sequence", "py:class", _PY + "collections.abc.html#collections.abc.Sequence"),
            ("datetime.date", "py:class", _PY + "datetime.html#datetime.date"),
            ("datetime.datetime", "py:class", _PY + "datetime.html#datetime.datetime"),
            ("datetime.time", "py:class", _PY + "datetime.html#datetime.time"),
            ("datetime.timedelta", "py:class", _PY + "datetime.html#datetime.timedelta"),
            ("decimal.Decimal", "py:class", _PY + "decimal.html#decimal.Decimal"),
            ("email.message.EmailMessage", "py:class", _PY + "email.message.html#email.message.EmailMessage"),
            (
                "email.mime.multipart.MIMEMultipart",
                "py:class",
                _PY + "email.mime.html#email.mime.multipart.MIMEMultipart",
            ),
            ("email.mime.text.MIMEText", "py:class", _PY + "email.mime.html#email.mime.text.MIMEText"),
            ("enum.Enum", "py:class", _PY + "enum.html#enum.Enum"),
            ("functools.partial", "py:function", _PY + "functools.html#functools.partial"),
            ("hmac.compare_digest", "py:function", _PY + "hmac.html#hmac.compare_digest"),
            ("http.server", "py:module", _PY + "http.server.html#module-http.server"),
            (
                "importlib.resources.files",
                "py:function",
                _PY + "importlib.resources.html#importlib.resources.files",
            ),
            ("pathlib.Path", "py:class", _PY + "pathlib.html#pathlib.Path"),
            ("random.Random", "py:class", _PY + "random.html#random.Random"),
            ("sqlite3", "py:module", _PY + "sqlite3.html#module-sqlite3"),
            ("sqlite3.Connection", "py:class", _PY + "sqlite3.html#sqlite3.Connection"),
            ("str.format_map", "py:method", _PY + "stdtypes.html#str.format_map"),
            ("typing.Protocol", "py:class", _PY + "typing.html#typing.Protocol"),
            ("zoneinfo.ZoneInfo", "py:class", _PY + "zoneinfo.html#zoneinfo.ZoneInfo"),
            ("ValueError", "py:exception", _PY + "exceptions.html#ValueError"),
            ("KeyError", "py:exception", _PY + "exceptions.html#KeyError"),
            ("LookupError", "py:exception", _PY + "exceptions.html#LookupError"),
            ("RuntimeError", "py:exception", _PY + "exceptions.html#RuntimeError"),
            ("TypeError", "py:exception", _PY + "exceptions.html#TypeError"),
            ("PermissionError", "py:exception", _PY + "exceptions.html#PermissionError"),
            ("FileNotFoundError", "py:exception", _PY + "exceptions.html#FileNotFoundError"),
            ("str", "py:class", _PY + "stdtypes.html#str"),
            ("int", "py:class", _PY + "functions.html#int"),
            ("bool", "py:class", _PY + "functions.html#bool"),
            ("bytes", "py:class", _PY + "stdtypes.html#bytes"),
            ("dict", "py:class", _PY + "stdtypes.html#dict"),
            ("list", "py:class", _PY + "stdtypes.html#list"),
            ("tuple", "py:class", _PY + "stdtypes.html#tuple"),
            ("frozenset", "py:class", _PY + "stdtypes.html#frozenset"),
        ],
    ),
    "attrs": (
        "attrs",
        "25.4",
        [
            ("attrs.define", "py:function", "api.html#attrs.define"),
            ("attrs.frozen", "py:function", "api.html#attrs.frozen"),
            ("attrs.field", "py:function", "api.html#attrs.field"),
            ("attrs.evolve", "py:function", "api.html#attrs.evolve"),
            ("attrs.asdict", "py:function", "api.html#attrs.asdict"),
            (
                "attrs.exceptions.FrozenInstanceError",
                "py:exception",
                "api.html#attrs.exceptions.FrozenInstanceError",
            ),
        ],
    ),
    "pluggy": (
        "pluggy",
        "1.6",
        [
            ("pluggy.PluginManager", "py:class", "api_reference.html#pluggy.PluginManager"),
            ("pluggy._manager.PluginManager", "py:class", "api_reference.html#pluggy.PluginManager"),
            ("pluggy.HookimplMarker", "py:class", "api_reference.html#pluggy.HookimplMarker"),
            ("pluggy.HookspecMarker", "py:class", "api_reference.html#pluggy.HookspecMarker"),
            (
                "pluggy.PluginManager.load_setuptools_entrypoints",
                "py:method",
                "api_reference.html#pluggy.PluginManager.load_setuptools_entrypoints",
            ),
        ],
    ),
    "babel": (
        "Babel",
        "2.17",
        [
            ("babel.core.Locale", "py:class", "api/core.html#babel.core.Locale"),
            (
                "babel.numbers.format_currency",
                "py:function",
                "api/numbers.html#babel.numbers.format_currency",
            ),
            ("babel.numbers.format_decimal", "py:function", "api/numbers.html#babel.numbers.format_decimal"),
            ("babel.dates.format_date", "py:function", "api/dates.html#babel.dates.format_date"),
            ("babel.dates.format_datetime", "py:function", "api/dates.html#babel.dates.format_datetime"),
            ("babel.support.Translations", "py:class", "api/support.html#babel.support.Translations"),
        ],
    ),
}


def inventory(project: str) -> bytes:
    """The bytes of one project's inventory file."""
    title, version, objects = INVENTORIES[project]
    header = (
        "# Sphinx inventory version 2\n"
        f"# Project: {title}\n"
        f"# Version: {version}\n"
        "# The remainder of this file is compressed using zlib.\n"
    ).encode()
    lines = "".join(f"{name} {role} 1 {uri} -\n" for name, role, uri in sorted(objects))
    return header + zlib.compress(lines.encode(), 9)


def main() -> None:
    for project in INVENTORIES:
        (HERE / f"{project}.inv").write_bytes(inventory(project))


if __name__ == "__main__":
    main()
