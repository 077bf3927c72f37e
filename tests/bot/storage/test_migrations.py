"""Migrations: a new database is built from nothing, matches the models, and can go back down."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from bot.storage.db import alembic_config, make_engine, migrate
from bot.storage.models import Base


def test_the_migrated_schema_matches_the_models(database_url: str) -> None:
    engine = make_engine(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def test_upgrade_is_idempotent_and_downgrade_removes_everything(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    command.downgrade(alembic_config(engine), "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    migrate(engine)
    assert "sessions" in inspect(engine).get_table_names()
    engine.dispose()


def test_0005_keeps_twilios_opt_outs_to_twilio_and_ours_to_us(database_url: str) -> None:
    """Opt-outs recorded before 0005 say only their word: Twilio's words and its 21610 mean Twilio blocks
    the number; our own words (NGUNG, ...) are kept by us, with no reminder sent yet."""
    engine = make_engine(database_url)
    command.downgrade(alembic_config(engine), "0004")
    words = ["STOP", "OPTOUT", "provider:21610", "NGUNG", "DUNG", "HUY DANG KY"]
    with engine.begin() as conn:
        for i, word in enumerate(words):
            conn.execute(
                text("INSERT INTO opt_outs (channel, address, keyword, opted_out_at) VALUES ('sms', :a, :k, :t)"),
                {"a": f"+1714555010{i}", "k": word, "t": datetime(2026, 11, 1, tzinfo=UTC).replace(tzinfo=None)},
            )
    migrate(engine)
    with engine.connect() as conn:
        found = dict(conn.execute(text("SELECT keyword, provider_blocks FROM opt_outs")).all())
        reminded = conn.execute(text("SELECT count(*) FROM opt_outs WHERE reminded_at IS NOT NULL")).scalar()
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM opt_outs"))
    engine.dispose()
    assert {word: bool(blocks) for word, blocks in found.items()} == {
        "STOP": True,
        "OPTOUT": True,
        "provider:21610": True,
        "NGUNG": False,
        "DUNG": False,
        "HUY DANG KY": False,
    }
    assert reminded == 0
