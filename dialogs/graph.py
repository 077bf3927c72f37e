"""The whole dialog graph: every dialog module's states in one checked :class:`Engine`."""

from __future__ import annotations

from dialogs import contacts, menu, verify
from dialogs.engine import DialogSettings, Engine


def build_engine(settings: DialogSettings | None = None) -> Engine:
    """Assemble and check the graph of all dialogs."""
    return Engine(
        (*menu.STATES, *verify.STATES, *contacts.STATES),
        start=menu.START,
        menu=menu.MENU,
        verify="verify.account",
        settings=settings or DialogSettings(),
    )
