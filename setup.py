"""Build hook: ship the catalogs inside the package.

The catalogs live at the top of the repository (``locales/vi``, ``locales/en``: where translators and
Babel's tools expect them). A built wheel carries them as ``bot/locales/``, which ``bot.i18n`` reads
with ``importlib.resources``; an editable install reads them from the repository. Everything else
about the package is declared in ``pyproject.toml``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

CATALOGS = Path(__file__).resolve().parent / "locales"


class BuildWithCatalogs(build_py):
    """``build_py`` that also copies ``locales/*/LC_MESSAGES/*.po`` into ``bot/locales/``."""

    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "bot" / "locales"
        for po in sorted(CATALOGS.glob("*/LC_MESSAGES/*.po")):
            destination = target / po.relative_to(CATALOGS)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(po, destination)


setup(cmdclass={"build_py": BuildWithCatalogs})
