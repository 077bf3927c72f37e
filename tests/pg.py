"""Throwaway PostgreSQL servers for the tests, started from the installed binaries by pytest-postgresql.

Every test run gets its own server in a temporary directory (never the machine's shared one), so that
tests may restart it, kill its backends and hold its locks. As root, PostgreSQL refuses to run, so the
server runs as the ``postgres`` user through a two-line ``pg_ctl`` wrapper (``runuser``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from port_for import get_port
from pytest_postgresql.executors import PostgreSQLExecutor


def find_pg_ctl() -> str | None:
    """The newest installed ``pg_ctl``, or None when PostgreSQL is not installed."""
    found = shutil.which("pg_ctl")
    if found:
        return found
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0,
    )
    return candidates[-1] if candidates else None


class ThrowawayPostgres:
    """One PostgreSQL server in a temporary directory: start, stop, restart, kill backends."""

    def __init__(self, pg_ctl: str, *, options: str = "-c max_connections=200") -> None:
        self.base = Path(tempfile.mkdtemp(prefix="outagebot-pg-"))
        executable = pg_ctl
        if os.geteuid() == 0:  # initdb and postgres refuse root: run them as the postgres user
            user = pwd.getpwnam("postgres")
            os.chown(self.base, user.pw_uid, user.pw_gid)
            wrapper = self.base / "pg_ctl"
            wrapper.write_text(f'#!/bin/sh\nexec runuser -u postgres -- "{pg_ctl}" "$@"\n', encoding="utf-8")
            wrapper.chmod(0o755)
            executable = str(wrapper)
        self.port = int(get_port(None) or 0)
        self.executor = PostgreSQLExecutor(
            executable=executable,
            host="127.0.0.1",
            port=self.port,
            datadir=str(self.base / "data"),
            unixsocketdir=str(self.base),
            logfile=str(self.base / "postgresql.log"),
            startparams="-w",
            dbname="outagebot_test",
            user="postgres",
            postgres_options=options,
        )

    def url(self, dbname: str = "outagebot_test") -> str:
        """A SQLAlchemy URL for a database on this server."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def start(self) -> ThrowawayPostgres:
        """Start the server (initialising its data directory the first time)."""
        self.executor.start()
        return self

    def stop(self) -> None:
        """Stop the server at once (fast shutdown: open connections are cut)."""
        with contextlib.suppress(Exception):
            self.executor.stop()

    def restart(self) -> None:
        """Stop and start again on the same port and data."""
        self.stop()
        self.start()

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run SQL through ``psql`` (a separate client, not our code) and return its output."""
        result = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", dbname, "-AtXqc", sql],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return result.stdout.strip()

    def create_database(self, name: str) -> str:
        """A new empty database; returns its URL."""
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def terminate_backends(self, dbname: str) -> int:
        """Kill every client connection to ``dbname`` (what an idle-connection killer or a failover does)."""
        return int(
            self.psql(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                f"WHERE datname = '{dbname}' AND pid <> pg_backend_pid()"
            )
            or 0
        )

    def close(self) -> None:
        """Stop the server and remove its directory."""
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)
