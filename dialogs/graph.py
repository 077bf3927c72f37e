"""The whole dialog graph: every dialog module's states in one checked :class:`Engine`."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from dialogs import contacts, menu, status, subscribe, verify
from dialogs.engine import DialogSettings, Engine, Reply
from dialogs.text import Literal, Msg


def build_engine(
    settings: DialogSettings | None = None,
    labels: Callable[[Msg | Literal], Iterable[str]] | None = None,
    fits: Callable[[Reply], bool] | None = None,
) -> Engine:
    """Assemble and check the graph of all dialogs; ``labels`` renders a label in every language,
    ``fits`` says whether a reply fits the channels' budget (see :class:`~dialogs.engine.Engine`)."""
    return Engine(
        (*menu.STATES, *verify.STATES, *contacts.STATES, *status.STATES, *subscribe.STATES),
        start=menu.START,
        menu=menu.MENU,
        verify="verify.account",
        settings=settings or DialogSettings(),
        labels=labels,
        fits=fits,
        shortcuts=(*status.SHORTCUTS, *subscribe.SHORTCUTS),
    )
