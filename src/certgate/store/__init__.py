"""Persistence: SQLAlchemy models, Alembic migrations, sealing of private keys, one repository."""
