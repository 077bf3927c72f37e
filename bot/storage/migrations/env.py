"""Alembic environment: runs on the engine the application hands in (``config.attributes``)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from bot.storage.models import Base

config = context.config
target_metadata = Base.metadata


def run() -> None:
    engine = config.attributes.get("engine")
    if engine is None:  # plain `alembic` command line: take the URL from the configuration
        engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite:///./outagebot.db")
    with engine.connect() as connection:
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=connection.dialect.name == "sqlite"
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run()
