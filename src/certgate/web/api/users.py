"""/users: the accounts of the /appliance interface (administrators, read-only auditors)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from certgate.schemas import NewPassword, NewUser, User
from certgate.service import users
from certgate.service.users import USERNAME_MAX
from certgate.web.api.deps import Admin, App, Viewer
from certgate.web.api.openapi import CREATED, NO_CONTENT, problem_responses
from certgate.web.api.paths import locate

router = APIRouter(prefix="/users", tags=["users"])

Username = Annotated[str, Path(min_length=1, max_length=USERNAME_MAX, examples=["auditor"])]


@router.get("", summary="List users")
def list_users(app: App, _: Viewer) -> list[User]:
    return [User.model_validate(view) for view in users.list_users(app)]


@router.get("/{username}", summary="Show a user", responses=problem_responses(404, 422))
def show_user(app: App, _: Viewer, username: Username) -> User:
    return User.model_validate(users.show_user(app, username))


@router.post("", summary="Add a user", **CREATED, responses=problem_responses(409, 422))
def add_user(app: App, principal: Admin, body: NewUser, response: Response) -> User:
    view = users.create_user(
        app, body.username, body.password.get_secret_value(), body.role, principal.actor
    )
    locate(response, router.prefix, view.username)
    return User.model_validate(view)


@router.delete(
    "/{username}",
    summary="Remove a user",
    **NO_CONTENT,
    responses=problem_responses(404, 409, 422),
)
def remove_user(app: App, principal: Admin, username: Username) -> None:
    """The user's sessions end and the API tokens they created are revoked. The last
    administrator cannot be removed (409 conflict)."""
    users.delete_user(app, username, principal.actor)


@router.put(
    "/{username}/password",
    summary="Change a user's password",
    **NO_CONTENT,
    responses=problem_responses(404, 422),
)
def change_password(app: App, principal: Admin, username: Username, body: NewPassword) -> None:
    """Every session of that user ends."""
    users.change_password(app, username, body.password.get_secret_value(), principal.actor)
