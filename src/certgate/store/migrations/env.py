"""Alembic environment: certgate passes its engine in ``config.attributes``, or a connection
whose transaction the migrations then join (a restore creates the schema and loads the rows in
one transaction)."""

from __future__ import annotations

from contextlib import nullcontext

from alembic import context
from sqlalchemy.engine import Connection

from certgate.store.models import Base

bind = context.config.attributes["engine"]
with nullcontext(bind) if isinstance(bind, Connection) else bind.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    context.run_migrations()
