"""/nodes: the cluster's nodes (every ``certgate serve`` on this store) and their drift."""

from __future__ import annotations

from fastapi import APIRouter

from certgate.schemas import Node
from certgate.service import nodes
from certgate.web.api.deps import App, Viewer
from certgate.web.api.openapi import problem_responses

router = APIRouter(prefix="/nodes", tags=["nodes"])


@router.get(
    "",
    summary="List the nodes",
    response_model=list[Node],
    responses=problem_responses(401),
)
def list_nodes(app: App, _: Viewer) -> list[Node]:
    """Each node with its last heartbeat, whether it is alive (last seen within three of its
    heartbeat intervals), what its listeners present and, when alive, its drift: assigned
    addresses where it presents another certificate than the assigned one, or none."""
    return [Node.model_validate(view) for view in nodes.list_nodes(app)]
