"""Storage: SQLAlchemy models, engines, repositories and Alembic migrations."""
