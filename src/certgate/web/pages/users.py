"""Users: administrators and read-only auditors; add, remove, change a password."""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import Response

from certgate.errors import ConflictError, ThrottledError, ValidationError
from certgate.service import auth, users
from certgate.service.auth import Principal
from certgate.web.api.errors import retry_after
from certgate.web.pages.access import Poster, call, page_view
from certgate.web.pages.forms import FRESH, FormState, admin_form, read_form, text
from certgate.web.pages.rendering import PREFIX, redirect, render_form, sentence

router = APIRouter()
PAGE = PREFIX + "/users"
ADD_INPUTS = ("username", "password", "role")


async def _page(request: Request, principal: Principal, state: FormState = FRESH) -> Response:
    accounts = await call(request, users.list_users)
    return render_form(
        request,
        "users.html",
        {
            "title": "Users",
            "section": "users",
            "users": accounts,
            "roles": users.ROLES,
            "values": state.values or {},
            "min_password": users.MIN_PASSWORD_LENGTH,
        },
        state,
        principal=principal,
    )


router.get(PAGE)(page_view(_page))


@router.post(PAGE)
async def add_user(request: Request, principal: Poster) -> Response:
    form = await admin_form(request, principal, "adding a user")
    values = {"username": text(form, "username"), "role": text(form, "role", "admin")}
    try:
        added = await call(
            request,
            users.create_user,
            values["username"],
            text(form, "password"),
            values["role"],
            principal.actor,
        )
    except ValidationError as error:
        return await _page(request, principal, FormState.refused(values, error, ADD_INPUTS))
    except ConflictError as error:  # the name is taken: beside it, the form as typed
        taken = FormState(values, {"username": str(error)}, error.status)
        return await _page(request, principal, taken)
    return redirect(PAGE, f"User {added.username} ({added.role}) added.")


@router.post(PAGE + "/{username}/delete")
async def remove_user(request: Request, username: str, principal: Poster) -> Response:
    principal.require_admin("removing a user")
    try:
        await call(request, users.delete_user, username, principal.actor)
    except ConflictError as error:  # the last administrator
        return redirect(PAGE, sentence(str(error)), "error")
    return redirect(PAGE, f"User {username} removed.")


OWN_PASSWORD_INPUTS = ("current_password", "password")  # ids prefixed "own-"


@router.post(PAGE + "/password")
async def change_own_password(request: Request, principal: Poster) -> Response:
    """Every user, auditors included: the current password, then the new one."""
    form = await read_form(request)
    throttle = request.app.state.throttle
    new_password = text(form, "password")
    try:
        delay = await call(request, auth.begin_password_change, principal, new_password, throttle)
        await anyio.sleep(delay)  # slowed down without holding a thread
        await call(
            request,
            auth.finish_password_change,
            principal,
            text(form, "current_password"),
            new_password,
            throttle,
        )
    except ValidationError as error:
        refused = FormState.refused(None, error, OWN_PASSWORD_INPUTS, "own-")
        return await _page(request, principal, refused)
    except ThrottledError as error:  # beside the current password, as the login page says it
        errors = {"own-current_password": sentence(str(error))}
        page = await _page(request, principal, FormState(errors=errors, status_code=error.status))
        page.headers.update(retry_after(error))
        return page
    return redirect(PREFIX + "/login", "Your password was changed: log in again.")


@router.post(PAGE + "/{username}/password")
async def change_password(request: Request, username: str, principal: Poster) -> Response:
    form = await admin_form(request, principal, "changing a password")
    try:
        await call(
            request,
            users.change_password,
            username,
            text(form, "password"),
            principal.actor,
        )
    except ValidationError as error:
        refused = FormState(errors={f"password-{username}": error.reason}, status_code=422)
        return await _page(request, principal, refused)
    if username == principal.username:
        return redirect(PREFIX + "/login", "Your password was changed: log in again.")
    return redirect(PAGE, f"The password of {username} was changed; their sessions ended.")
