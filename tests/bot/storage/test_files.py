"""SQLite files hold every customer's data: only their owner may read them.

Everything here runs on real files with the real SQLite, under the usual umask (022), which is
what makes SQLite create files readable by everyone (0644) when left to itself.
"""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.storage.db import Database, make_engine, migrate
from bot.storage.files import secure_sqlite_file

WAL_FILES = ("", "-wal", "-shm")


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def modes(database: Path) -> dict[str, int]:
    """The mode of the database file and of its -wal and -shm files (all must exist)."""
    return {suffix or "db": mode(database.with_name(database.name + suffix)) for suffix in WAL_FILES}


def crash_after_writing(database: Path) -> None:
    """A process writes in WAL mode through SQLite itself and dies without closing: -wal and -shm stay."""
    script = (
        "import os, sqlite3, sys\n"
        "os.umask(0o022)\n"
        "conn = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "conn.execute('PRAGMA journal_mode=WAL')\n"
        "conn.execute('CREATE TABLE IF NOT EXISTS notes (body TEXT)')\n"
        "conn.execute(\"INSERT INTO notes VALUES ('Maria Lopez +16265550100')\")\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", script, str(database)], check=True, timeout=60)


def test_a_new_database_and_its_wal_and_shm_files_are_readable_by_the_owner_only(tmp_path: Path) -> None:
    database = tmp_path / "data" / "outagebot.db"
    engine = make_engine(f"sqlite:///{database}")
    migrate(engine)
    db = Database(engine)
    try:
        with db.transaction() as conn:  # a write, so that SQLite has -wal and -shm open beside it
            conn.execute(
                text(
                    "INSERT INTO opt_outs (channel, address, keyword, opted_out_at) "
                    "VALUES ('sms', '+16265550100', 'STOP', '2026-11-27 22:00:00')"
                )
            )
        assert modes(database) == {"db": 0o600, "-wal": 0o600, "-shm": 0o600}
    finally:
        db.close()


def test_an_existing_database_readable_by_others_is_narrowed_with_one_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    database = tmp_path / "outagebot.db"
    crash_after_writing(database)
    assert modes(database) == {"db": 0o644, "-wal": 0o644, "-shm": 0o644}  # what SQLite does on its own

    with caplog.at_level(logging.WARNING, logger="bot.storage.files"):
        engine = make_engine(f"sqlite:///{database}")
    try:
        assert modes(database) == {"db": 0o600, "-wal": 0o600, "-shm": 0o600}
        with engine.connect() as conn:  # SQLite recovers the crashed writer's WAL and keeps the modes
            assert conn.execute(text("SELECT body FROM notes")).scalar() == "Maria Lopez +16265550100"
            conn.execute(text("INSERT INTO notes VALUES ('another')"))
            conn.commit()
            assert modes(database) == {"db": 0o600, "-wal": 0o600, "-shm": 0o600}
    finally:
        engine.dispose()
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.storage.files"]
    assert lines == [
        f"database files in {tmp_path} were readable by others; narrowed to the owner only: "
        "outagebot.db (0644 -> 0600), outagebot.db-wal (0644 -> 0600), outagebot.db-shm (0644 -> 0600)"
    ]


def test_a_crash_of_our_own_writer_leaves_wal_and_shm_files_readable_by_the_owner_only(tmp_path: Path) -> None:
    database = tmp_path / "outagebot.db"
    secure_sqlite_file(database)
    crash_after_writing(database)  # SQLite gives -wal and -shm the database file's mode
    assert modes(database) == {"db": 0o600, "-wal": 0o600, "-shm": 0o600}


def test_a_database_already_private_is_left_as_it_is_and_nothing_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    database = tmp_path / "outagebot.db"
    secure_sqlite_file(database)
    database.chmod(0o400)  # an operator's choice narrower than ours stays
    with caplog.at_level(logging.DEBUG, logger="bot.storage.files"):
        secure_sqlite_file(database)
    assert mode(database) == 0o400
    assert caplog.records == []


def test_in_memory_databases_and_uri_names_are_not_files(tmp_path: Path) -> None:
    before = set(Path.cwd().iterdir())
    for name in ("", ":memory:", "file:shared?mode=memory&cache=shared"):
        secure_sqlite_file(name)
    assert set(Path.cwd().iterdir()) == before
    engine = make_engine("sqlite://")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1
    engine.dispose()


def test_only_regular_files_are_changed(tmp_path: Path) -> None:
    database = tmp_path / "outagebot.db"
    database.mkdir()  # a mistake in the URL: SQLite will refuse it, we leave it as it is
    secure_sqlite_file(database)
    assert mode(database) == 0o755
