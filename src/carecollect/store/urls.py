"""Which store a URL names, and opening it: ``sqlite:///path`` or ``postgresql://...``.

Three slashes and a relative path, four for an absolute one (as SQLAlchemy reads them):

>>> store_scheme("sqlite:////var/lib/carecollect/clinic.sqlite")
'sqlite'
>>> sqlite_path("sqlite:////var/lib/carecollect/clinic.sqlite")
'/var/lib/carecollect/clinic.sqlite'
>>> sqlite_path("sqlite:///clinic.sqlite"), sqlite_path("sqlite:///:memory:")
('clinic.sqlite', ':memory:')
>>> store_scheme("postgresql://carecollect_run@db.internal/billing")
'postgresql'
>>> safe_url("postgresql://run:s3cret@db.internal:5432/billing")
'postgresql://run:***@db.internal:5432/billing'
>>> store_scheme("mysql://x")
Traceback (most recent call last):
...
carecollect.errors.ConfigurationError: store URL mysql://x: the scheme must be sqlite:/// (a file) or postgresql:// (a server)
"""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path

from ..errors import ConfigurationError
from .base import Store

__all__ = ["open_store", "safe_url", "sqlite_path", "sqlite_url", "store_scheme", "url_of"]

_PASSWORD = re.compile(r"(://[^:/@]+:)[^@]*@")


def safe_url(url: str) -> str:
    """The URL with any password masked (what logs, errors and ``store check`` show)."""
    return _PASSWORD.sub(r"\1***@", url)


def store_scheme(url: str) -> str:
    """``"sqlite"`` or ``"postgresql"`` (``postgres://`` counts as the latter).

    :raises ConfigurationError: any other scheme.
    """
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "sqlite":
        return "sqlite"
    if scheme in ("postgresql", "postgres"):
        return "postgresql"
    raise ConfigurationError(
        f"store URL {safe_url(url)}: the scheme must be sqlite:/// (a file) or postgresql:// (a server)"
    )


def sqlite_path(url: str) -> str:
    """The file of a ``sqlite:///`` URL (``sqlite:////abs/path`` and ``sqlite:///rel/path`` both work).

    :raises ConfigurationError: not a ``sqlite:///`` URL, or no path in it.
    """
    if store_scheme(url) != "sqlite" or not url.lower().startswith("sqlite:///"):
        raise ConfigurationError(f"store URL {safe_url(url)}: a SQLite URL is sqlite:///path/to/file.sqlite")
    path = urllib.parse.unquote(url[len("sqlite:///") :])
    if not path:
        raise ConfigurationError(f"store URL {url}: no file after sqlite:///")
    return path


def sqlite_url(path: Path) -> str:
    """The ``sqlite:///`` URL of a database file."""
    return "sqlite:///" + urllib.parse.quote(str(path), safe="/:")


def open_store(url: str, *, migrate: bool = False) -> Store:
    """Open the store the URL names.

    A SQLite file is created and migrated when opened (it is the process's own file). A
    PostgreSQL schema is brought up to date only with ``migrate`` (it needs DDL rights, which
    the run's role does not have); otherwise an outdated schema is refused.

    :param url: ``sqlite:///path`` or ``postgresql://user@host:port/database``.
    :param migrate: apply missing PostgreSQL migrations first.
    :raises ConfigurationError: an unknown scheme, or PostgreSQL without ``carecollect[postgres]``.
    """
    if store_scheme(url) == "sqlite":
        from .sqlite import SQLiteStore

        return SQLiteStore(sqlite_path(url))
    try:
        from .postgres import PostgresStore
    except ImportError as exc:
        raise ConfigurationError(
            f'store URL {safe_url(url)}: the PostgreSQL store needs `pip install "carecollect[postgres]"` ({exc.name} is missing)'
        ) from None
    return PostgresStore(url, migrate=migrate)


def url_of(store: Store) -> str | None:
    """The URL another process (or thread) opens to reach the same data as ``store``.

    ``None`` for a store only this handle can reach (SQLite ``:memory:``, a store of no known kind).
    The URL may carry a password: never log it unmasked (:func:`safe_url`).

    >>> from carecollect.store.sqlite import SQLiteStore
    >>> with SQLiteStore(":memory:") as memory:
    ...     print(url_of(memory))
    None
    """
    from .sqlite import SQLiteStore

    if isinstance(store, SQLiteStore):
        return None if store.path == ":memory:" else sqlite_url(Path(store.path))
    conninfo = getattr(store, "_conninfo", None)
    if type(store).__name__ == "PostgresStore" and isinstance(conninfo, str):
        return conninfo
    return None
