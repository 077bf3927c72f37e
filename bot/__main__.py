"""``python -m bot``: the same as the ``outagebot`` command."""

from bot.cli import main

main()
