"""nox sessions: the one entry point for tests, lint, types, docs, build, plugins and the benchmark.

Interpreters: each supported Python is looked up on PATH and, where a pyenv
shim hides it, among pyenv's installed versions; a missing one is reported
and skipped, never silently passed off as tested.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["tests", "lint", "typecheck", "docs", "build", "plugins"]

ROOT = Path(__file__).parent
SUPPORTED = ("3.11", "3.12", "3.13")


def _works(exe: str) -> bool:
    try:
        return subprocess.run([exe, "-c", "import venv"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _find_pythons() -> list[str]:
    found = []
    pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    for version in SUPPORTED:
        name = f"python{version}"
        exe = shutil.which(name)
        if exe and _works(exe):
            found.append(version)
            continue
        candidates = sorted(glob.glob(os.path.join(pyenv_root, "versions", f"{version}.*", "bin", name)))
        for cand in reversed(candidates):
            if _works(cand):
                os.environ["PATH"] = os.path.dirname(cand) + os.pathsep + os.environ["PATH"]
                found.append(version)
                break
        else:
            print(f"noxfile: Python {version} not found on this machine; its test session is skipped")
    return found


PYTHONS = _find_pythons()
DEFAULT = PYTHONS[0] if PYTHONS else None
REFERENCE_PLUGINS = sorted(p for p in (ROOT / "plugins").glob("*") if (p / "pyproject.toml").exists())


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Unit, property, scenario and doctest tests on every supported Python."""
    session.install(
        "-e", ".[test,pdf,fhir,web,x12,report,otel,postgres,dask]", "-e", "plugins/carecollect-demo-gateway"
    )
    # the real-browser and PostgreSQL suites run once each, in their own sessions
    # (nox -s browser, nox -s tests_postgres, nox -s tests_dask); the unit suite is spread over
    # the machine's cores (-n auto; `nox -s tests -- -n 0` runs it in one process)
    session.run("pytest", "-n", "auto", "-m", "not browser and not postgres and not dask", *session.posargs)


@nox.session(python=DEFAULT)
def tests_postgres(session: nox.Session) -> None:
    """The PostgreSQL store (the store conformance kit, migrations, roles, timeouts, the CLI) on a
    throwaway server; fails (never skips) when no server can be started.

    Needs Debian's ``postgresql`` package (``apt-get install -y postgresql``; ``.ci/run`` installs
    it): the tests ``initdb`` their own cluster in a temporary directory on a free local port.
    """
    session.install(
        "-e",
        ".[test,pdf,fhir,web,x12,report,otel,postgres,dask,demo-channels]",
        "-e",
        "plugins/carecollect-demo-gateway",
        "-e",
        "plugins/carecollect-smtp",
        "-e",
        "plugins/carecollect-sms",
    )
    session.run(
        "pytest",
        "-m",
        # every test marked postgres in the whole suite (the Dask ones run in tests_dask)
        "postgres and not dask and not browser",
        "tests",
        *session.posargs,
        env={"CARECOLLECT_REQUIRE_POSTGRES": "1"},
    )


@nox.session(python=DEFAULT)
def tests_dask(session: nox.Session) -> None:
    """The run's partitions on a Dask LocalCluster (worker processes), on a SQLite file and on a
    throwaway PostgreSQL server: exactly once, a worker killed mid-partition, the production how-to.
    Fails (never skips) when no PostgreSQL server can be started.
    """
    session.install("-e", ".[test,postgres,dask]")
    session.run(
        "pytest",
        "-m",
        "dask",
        "tests/test_run_dask.py",
        "tests/test_docs_run_in_production.py",
        *session.posargs,
        env={"CARECOLLECT_REQUIRE_POSTGRES": "1"},
    )


@nox.session(python=DEFAULT)
def browser(session: nox.Session) -> None:
    """The patient pages in Debian's chromium with axe-core; fails (never skips) when either is missing.

    Needs ``apt-get install -y chromium`` and ``npm install --prefix tests/web axe-core`` first
    (``.ci/run`` does both); Playwright drives the installed chromium (no browser download).
    """
    session.install(
        "-e", ".[test,web,report]", "-e", "plugins/carecollect-demo-gateway", "playwright==1.65.2"
    )
    session.run(
        "pytest",
        "-m",
        "browser",
        # the report's sync Playwright test first: the web suite leaves an asyncio loop behind
        "tests/test_report_formats.py",
        "tests/web",
        *session.posargs,
        env={"CARECOLLECT_REQUIRE_BROWSER": "1"},
    )


@nox.session(python=DEFAULT)
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff")
    session.run("ruff", "check", "src", "tests", "plugins", "noxfile.py", "docs/conf.py")
    session.run("ruff", "format", "--check", "src", "tests", "plugins", "noxfile.py", "docs/conf.py")


@nox.session(python=DEFAULT)
def typecheck(session: nox.Session) -> None:
    """mypy --strict on src/."""
    session.install("-e", ".[test,pdf,fhir,web,x12,report,otel,postgres,dask]", "mypy")
    session.run("mypy", "--strict", "src/carecollect")


@nox.session(python=DEFAULT)
def docs(session: nox.Session) -> None:
    """Sphinx HTML and doctest, warnings are errors."""
    session.install(
        "-e", ".[test,pdf,fhir,web,x12,report,otel,postgres,dask]", "sphinx", "furo", "sphinx-copybutton"
    )
    session.run("sphinx-build", "-W", "--keep-going", "-b", "html", "docs", "docs/_build/html")
    session.run("sphinx-build", "-W", "--keep-going", "-b", "doctest", "docs", "docs/_build/doctest")
    # the reference shows every hook and enum member; tutorials run as pasted (these need Sphinx)
    session.run(
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests/test_docs_reference.py",
        "tests/test_docs_tutorials_pasted.py",
    )


@nox.session(python=DEFAULT)
def build(session: nox.Session) -> None:
    """Build sdist and wheel, install the wheel into a clean venv and import it."""
    session.install("build")
    dist = ROOT / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    session.run("python", "-m", "build", "--outdir", str(dist))
    wheels = sorted(dist.glob("carecollect-*.whl"))
    if not wheels:
        session.error("no wheel was built")
    clean = Path(session.create_tmp()) / "clean-venv"
    shutil.rmtree(clean, ignore_errors=True)
    session.run("python", "-m", "venv", str(clean))
    py = str(clean / "bin" / "python")
    session.run(py, "-m", "pip", "install", "-q", str(wheels[-1]), external=True)
    session.run(
        py,
        "-c",
        "import carecollect, pathlib; "
        "assert {'Invoice','PaymentPlan','Dispute','OutreachStep'} <= set(carecollect.__all__); "
        "assert (pathlib.Path(carecollect.__file__).parent / 'py.typed').exists(); "
        "print('wheel OK', carecollect.__version__)",
        external=True,
    )


@nox.session(python=DEFAULT)
def plugins(session: nox.Session) -> None:
    """Install every reference plugin in plugins/ and run its tests against the conformance kit."""
    session.install("-e", ".[test,pdf,fhir,x12,web]")
    if not REFERENCE_PLUGINS:
        session.error("no reference plugins found in plugins/")
    for plugin in REFERENCE_PLUGINS:
        session.install(f"{plugin}[test]")  # a real install: found through its entry point, not a path
    # every installed reference plugin is discovered through the "carecollect" entry-point group
    session.run(
        "python",
        "-c",
        "from importlib.metadata import entry_points; "
        "from carecollect.plugins.manager import make_plugin_manager; "
        "names = {ep.name for ep in entry_points(group='carecollect')}; "
        "pm = make_plugin_manager(); "
        "found = set(pm.payment_providers()) | set(pm.message_channels()) | set(pm.agency_connectors()); "
        "print('entry points:', sorted(names), '-> provides:', sorted(found)); "
        "assert names, 'no plugin registered under the carecollect entry-point group'",
    )
    for plugin in REFERENCE_PLUGINS:
        session.run("pytest", "-p", "no:cacheprovider", "--rootdir", str(plugin), str(plugin / "tests"))
    # `carecollect demo --deliver` sends through the smtp and sms plugins to local servers
    session.run(
        "pytest",
        "-p",
        "no:cacheprovider",
        "tests/test_demo_deliver.py",
        "tests/test_docs_demo_figures.py::test_the_deliver_section_shows_a_real_run_through_the_local_servers",
        # the bench's SMTP figures (figure 6) through the installed smtp plugin, with and without PIPELINING
        "tests/test_bench_smoke.py::test_the_channel_figures_send_through_the_smtp_plugin_to_a_local_server",
        # the patient page offers the installed payment plugins (skipped where they are not)
        "tests/web/test_ways_to_pay.py::test_the_installed_payment_plugins_are_offered_as_they_declare",
    )


@nox.session(python=DEFAULT)
def bench(session: nox.Session) -> None:
    """The benchmark: prints its figures (never a timed unit test)."""
    # the channel figures (6) send through the smtp and sms plugins to local servers; the
    # PostgreSQL figures (7) need psycopg
    session.install(
        "-e",
        ".[dask,postgres,demo-channels]",
        "pytest",  # carecollect.testing (its throwaway PostgreSQL server for figure 7) imports it
        "-e",
        "plugins/carecollect-smtp",
        "-e",
        "plugins/carecollect-sms",
    )
    session.run("python", "-m", "carecollect.bench", *session.posargs)
