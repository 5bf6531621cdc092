"""/tokens: API tokens for automation. The token is shown once, only its hash is kept; each
has a role and shows when it was last used; a revoked token is refused at once."""

from __future__ import annotations

from fastapi import APIRouter, Response

from certgate.schemas import CreatedToken, NewToken, Token
from certgate.service import auth
from certgate.web.api.deps import Admin, App, Viewer
from certgate.web.api.openapi import CREATED, problem_responses
from certgate.web.api.paths import TokenId, locate

router = APIRouter(prefix="/tokens", tags=["tokens"])


@router.get("", summary="List API tokens")
def list_tokens(app: App, _: Viewer) -> list[Token]:
    return [Token.model_validate(view) for view in auth.list_tokens(app)]


@router.get("/{token_id}", summary="Show an API token", responses=problem_responses(404, 422))
def show_token(app: App, _: Viewer, token_id: TokenId) -> Token:
    """The token's name, role and use; never its value (shown once, when it was made)."""
    return Token.model_validate(auth.show_token(app, token_id))


@router.post("", summary="Create an API token", **CREATED, responses=problem_responses(422))
def create_token(app: App, principal: Admin, body: NewToken, response: Response) -> CreatedToken:
    """The response holds the token itself; it cannot be shown again."""
    value, view = auth.create_token(app, body.name, body.role, created_by=principal.actor)
    locate(response, router.prefix, view.id)
    response.headers["Cache-Control"] = "no-store"
    return CreatedToken.model_validate({**Token.model_validate(view).model_dump(), "token": value})


@router.delete("/{token_id}", summary="Revoke an API token", responses=problem_responses(404, 422))
def revoke_token(app: App, principal: Admin, token_id: TokenId) -> Token:
    """The token is refused from now on; it stays listed as revoked."""
    return Token.model_validate(auth.revoke_token(app, token_id, principal.actor))
