"""API tokens: create (the value is shown once), name, role, last used, revoke."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from certgate.errors import ValidationError
from certgate.service import auth
from certgate.service.auth import Principal
from certgate.service.users import ROLES
from certgate.web.pages.access import Poster, call, page_view
from certgate.web.pages.forms import FRESH, FormState, admin_form, integer, text
from certgate.web.pages.rendering import PREFIX, redirect, render_form

router = APIRouter()
PAGE = PREFIX + "/security/tokens"


async def _page(
    request: Request, principal: Principal, state: FormState = FRESH, *, new_token: str = ""
) -> Response:
    tokens = await call(request, auth.list_tokens)
    return render_form(
        request,
        "tokens.html",
        {
            "title": "Security :: API Tokens",
            "section": "security",
            "subsection": "tokens",
            "tokens": tokens,
            "roles": ROLES,
            "new_token": new_token,
            "values": state.values or {},
        },
        state,
        principal=principal,
    )


router.get(PAGE)(page_view(_page))


@router.post(PAGE)
async def create_token(request: Request, principal: Poster) -> Response:
    form = await admin_form(request, principal, "creating an API token")
    values = {"name": text(form, "name"), "role": text(form, "role", "auditor")}
    try:
        value, _ = await call(
            request, auth.create_token, values["name"], values["role"], principal.actor
        )
    except ValidationError as error:  # shown again as typed
        refused = FormState.refused(values, error, ("name", "role"), prefix="token-")
        return await _page(request, principal, refused)
    # Shown once, in this response only (never stored, never redirected through a cookie).
    return await _page(request, principal, new_token=value)


@router.post(PAGE + "/{token_id}/revoke")
async def revoke_token(request: Request, token_id: str, principal: Poster) -> Response:
    principal.require_admin("revoking an API token")
    number = integer(token_id, "token", -1)
    revoked = await call(request, auth.revoke_token, number, principal.actor)
    return redirect(PAGE, f"API token {revoked.name} revoked.")
