"""Every setting is documented where an operator looks for it."""

from __future__ import annotations

import re

from bot.config import Settings
from tests.conftest import ROOT

NAMES = [f"OUTAGEBOT_{name.upper()}" for name in Settings.model_fields]


def test_env_example_names_every_setting_with_its_default() -> None:
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    for name, field in Settings.model_fields.items():
        default = "" if field.default is None else str(field.default)
        assert f"# OUTAGEBOT_{name.upper()}={default}\n" in example


def test_the_readme_table_names_every_setting_and_no_other() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first_column = re.findall(r"^\| ([^|]*`OUTAGEBOT_[^|]*)\|", readme, flags=re.MULTILINE)
    table = {name for cell in first_column for name in re.findall(r"`(OUTAGEBOT_[A-Z_]+)`", cell)}
    assert table - {"OUTAGEBOT_TEST_POSTGRES_URL"} == set(NAMES)  # that one is the tests' own
