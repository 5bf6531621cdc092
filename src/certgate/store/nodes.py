"""Queries for nodes: one row per ``certgate serve`` node name, written by its heartbeat.
Not a served table: writing it does not bump the revision."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from certgate.store.models import NodeRow
from certgate.store.repository import Repository


def node(repository: Repository, name: str, *, for_update: bool = False) -> NodeRow | None:
    """``for_update``: locked, so a heartbeat committed meanwhile is waited for and seen."""
    query = select(NodeRow).where(NodeRow.name == name)
    if for_update:
        query = query.with_for_update()
    return repository.session.scalar(query)


def beat(repository: Repository, name: str, values: dict[str, Any]) -> None:
    """Write the node's heartbeat: its row, made on its first beat."""
    row = node(repository, name)
    if row is None:
        repository.add(NodeRow(name=name, **values))
        return
    for key, value in values.items():
        setattr(row, key, value)


def all_nodes(repository: Repository) -> list[NodeRow]:
    return list(repository.session.scalars(select(NodeRow).order_by(NodeRow.name)))
