"""SQLAlchemy 2 async repositories and Alembic migrations; one code path, SQLite or PostgreSQL."""
