"""A throwaway PostgreSQL server for tests: ``initdb`` in a fresh directory, started on a free local port.

It uses the server binaries of the machine (Debian's ``postgresql`` package puts them in
``/usr/lib/postgresql/<major>/bin``) and needs no database driver. PostgreSQL refuses to run
as root, so under root the data directory is handed to the ``postgres`` system user and every
server command runs as that user (``runuser``). Settings are for tests (``fsync=off``...):
never keep data in it.

The session fixture :func:`postgres_server` starts one per test session and removes it
afterwards, also when tests fail. Without server binaries it skips, saying so loudly, unless
``CARECOLLECT_REQUIRE_POSTGRES=1`` is set: then the missing server fails the tests (CI sets
it, so the PostgreSQL tests can never be skipped there unnoticed)::

    from carecollect.testing.postgres import postgres_server  # noqa: F401  (a session fixture)

    def test_something(postgres_server):
        url = postgres_server.create_database("mine")
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..errors import PostgresUnavailable

__all__ = [
    "REQUIRE_ENV",
    "LocalPostgres",
    "PostgresUnavailable",
    "find_server_binaries",
    "postgres_server",
]

#: The environment variable that turns "no PostgreSQL server here" from a skip into a failure.
REQUIRE_ENV = "CARECOLLECT_REQUIRE_POSTGRES"


def find_server_binaries() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl`` (the newest major version), or ``None``."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
    )
    for folder in reversed(found):
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).parent
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class LocalPostgres:
    """One throwaway cluster: :meth:`start` it, :meth:`create_database` per test module, :meth:`stop`.

    :meth:`halt` and :meth:`resume` stop and start the server on the same data and port, for tests
    of clients that lose their database mid-work.

    :param bindir: the server binaries (default: :func:`find_server_binaries`).
    :raises PostgresUnavailable: no binaries, or (as root) no ``postgres`` user to run them.
    """

    def __init__(self, bindir: Path | None = None) -> None:
        found = bindir or find_server_binaries()
        if found is None:
            raise PostgresUnavailable(
                "no PostgreSQL server binaries (initdb, pg_ctl) found under /usr/lib/postgresql/*/bin or on PATH; "
                "install them with `apt-get install postgresql`"
            )
        self.bindir = found
        self.port = 0
        self.directory: Path | None = None
        self._as: list[str] = []
        if os.geteuid() == 0:
            if shutil.which("runuser") is None:
                raise PostgresUnavailable(
                    "running as root and `runuser` is missing (PostgreSQL refuses root)"
                )
            try:
                import pwd

                pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable(
                    "running as root and there is no `postgres` user (PostgreSQL refuses root)"
                ) from None
            self._as = ["runuser", "-u", "postgres", "--"]

    @property
    def user(self) -> str:
        """The superuser of the cluster (the OS user that ran ``initdb``)."""
        if self._as:
            return "postgres"
        import getpass

        return getpass.getuser()

    def _run(self, *args: str) -> None:
        assert self.directory is not None
        done = subprocess.run(
            [*self._as, *args], cwd=self.directory, capture_output=True, text=True, check=False, timeout=120
        )
        if done.returncode != 0:
            raise PostgresUnavailable(
                f"{Path(args[0]).name} failed ({done.returncode}): {done.stderr.strip()[-800:]}"
            )

    def start(self) -> LocalPostgres:
        """``initdb`` a cluster in a fresh directory and start it on a free port of 127.0.0.1."""
        self.directory = Path(tempfile.mkdtemp(prefix="carecollect-pg-"))
        if self._as:
            shutil.chown(self.directory, "postgres", "postgres")
        data = self.directory / "data"
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(data),
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "-A",
            "trust",
            "--no-sync",
            "-U",
            self.user,
        )
        self.port = _free_port()
        self.resume()
        return self

    def halt(self, mode: str = "fast") -> None:
        """Stop the server and keep its data (a database server going down under its clients).

        :param mode: ``pg_ctl stop -m``: ``fast`` (sessions are ended, the server shuts down
            cleanly), ``immediate`` (the processes quit at once, as in a crash; the next start
            recovers from the write-ahead log) or ``smart``.
        """
        if mode not in ("smart", "fast", "immediate"):
            raise ValueError(f"mode {mode!r}: smart, fast or immediate")
        assert self.directory is not None, "start() first"
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.directory / "data"), "-m", mode, "-w", "stop")

    def resume(self) -> None:
        """Start the server on its data and port again (after :meth:`halt`)."""
        assert self.directory is not None, "start() first"
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.directory} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
        )
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.directory / "data"),
            "-o",
            options,
            "-l",
            str(self.directory / "log"),
            "-w",
            "start",
        )

    def stop(self) -> None:
        """Stop the server (fast) and remove its directory."""
        if self.directory is None:
            return
        try:
            if (self.directory / "data" / "postmaster.pid").exists():
                self._run(
                    str(self.bindir / "pg_ctl"),
                    "-D",
                    str(self.directory / "data"),
                    "-m",
                    "fast",
                    "-w",
                    "stop",
                )
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def url(self, database: str = "postgres", user: str | None = None) -> str:
        """A ``postgresql://`` URL for ``database`` as ``user`` (default: the superuser)."""
        return f"postgresql://{user or self.user}@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres", *, user: str | None = None) -> str:
        """Run SQL (one command string) with the server's own ``psql``; returns its output.

        :param user: the role to connect as (default: the superuser).
        """
        return self._psql(["-c", sql], database, user)

    def psql_file(
        self, path: str | os.PathLike[str], database: str = "postgres", *, user: str | None = None
    ) -> str:
        """Run a SQL script with ``psql -f`` (each statement on its own, stopping at the first error)."""
        return self._psql(["-f", str(path)], database, user)

    def _psql(self, args: list[str], database: str, user: str | None) -> str:
        assert self.directory is not None
        done = subprocess.run(
            [
                str(self.bindir / "psql"),
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                user or self.user,
                "-d",
                database,
                *args,
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if done.returncode != 0:
            raise PostgresUnavailable(f"psql failed: {done.stderr.strip()[-800:]}")
        return done.stdout

    def create_database(self, name: str) -> str:
        """Create an empty database; returns its URL."""
        if not name.replace("_", "").isalnum():
            raise ValueError(f"database name {name!r}: letters, digits and _ only")
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[LocalPostgres]:
    """A :class:`LocalPostgres` for the whole session (skipped loudly, or failed under ``CARECOLLECT_REQUIRE_POSTGRES=1``)."""
    try:
        server = LocalPostgres()
        server.start()
    except PostgresUnavailable as exc:
        reason = f"NO POSTGRESQL SERVER: the PostgreSQL tests did not run: {exc}"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{reason} ({REQUIRE_ENV}=1 requires them)", pytrace=False)
        pytest.skip(reason)
    try:
        yield server
    finally:
        server.stop()
