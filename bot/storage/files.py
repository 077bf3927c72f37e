"""SQLite database files readable by their owner only.

SQLite creates a new database file with mode 0644 (less the umask), so on an ordinary machine every
local user can read every customer's name, number and contacts. It creates the ``-wal`` and ``-shm``
files beside it with the database file's own mode, and a rollback ``-journal`` likewise. So it is
enough to create the database file with 0600 before SQLite opens it, and to narrow the files of an
existing database that were left wider (by an older version, a copy, a restore, or a crash that left
its ``-wal`` and ``-shm`` behind).
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

OWNER_ONLY = 0o600
COMPANIONS = ("-wal", "-shm", "-journal")


def sqlite_files(database: Path) -> list[Path]:
    """The database file and the companion files SQLite may keep beside it."""
    return [database, *(database.with_name(database.name + suffix) for suffix in COMPANIONS)]


def secure_sqlite_file(database: str | os.PathLike[str]) -> None:
    """Make a SQLite database and its ``-wal``/``-shm``/``-journal`` files readable by their owner only.

    A database that does not exist yet is created empty with mode 0600 (SQLite accepts an empty
    file as a new database, and gives the files it adds later the same mode). Existing files with
    any permission for group or others are narrowed to the owner's bits, with one warning saying
    which files and from what mode. In-memory databases and ``file:`` URIs are left alone.

    Args:
        database: the database file's path, as in a ``sqlite:///`` URL.
    """
    name = os.fspath(database)
    if not name or name == ":memory:" or name.startswith("file:"):
        return
    path = Path(name)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, OWNER_ONLY)
    except FileExistsError:
        pass
    else:
        os.close(descriptor)
    narrowed: list[str] = []
    for file in sqlite_files(path):
        try:
            status = file.stat()
        except FileNotFoundError:
            continue
        mode = stat.S_IMODE(status.st_mode)
        if stat.S_ISREG(status.st_mode) and mode & 0o077:  # not a directory or a device in its place
            try:
                file.chmod(mode & 0o700)
            except OSError as exc:
                log.error(
                    "database file %s is readable by others (mode %04o) and could not be narrowed: %s",
                    file,
                    mode,
                    exc.strerror,
                )
                continue
            narrowed.append(f"{file.name} ({mode:04o} -> {mode & 0o700:04o})")
    if narrowed:
        log.warning(
            "database files in %s were readable by others; narrowed to the owner only: %s",
            path.parent,
            ", ".join(narrowed),
        )
