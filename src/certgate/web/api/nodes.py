"""/nodes: the cluster's nodes (every ``certgate serve`` on this store) and their drift."""

from __future__ import annotations

from fastapi import APIRouter

from certgate.schemas import Node
from certgate.service import nodes
from certgate.web.api.deps import Admin, App, Viewer
from certgate.web.api.openapi import NO_CONTENT, problem_responses

router = APIRouter(prefix="/nodes", tags=["nodes"])


@router.get("", summary="List the nodes")
def list_nodes(app: App, _: Viewer) -> list[Node]:
    """Each node with its last heartbeat, whether it is alive (last seen within three of its
    heartbeat intervals), what its listeners present and, when alive, its drift: assigned
    addresses where it presents another certificate than the assigned one, or none."""
    return [Node.model_validate(view) for view in nodes.list_nodes(app)]


@router.delete(
    "/{name}",
    summary="Remove a stopped or lost node",
    **NO_CONTENT,
    responses=problem_responses(404, 409, 422),
)
def remove_node(app: App, principal: Admin, name: str) -> None:
    """Forget a node that stopped or was lost (retired, renamed); an alive node is refused
    (409): its next heartbeat would register it again; so is one with addresses pinned to
    it (409), which would be served by nobody: give them to another node first."""
    nodes.remove_node(app, name, principal.actor)
