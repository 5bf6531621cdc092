"""A path that has a route once its trailing slash is added or taken away: redirected there,
by a relative Location. Starlette's own redirect (``redirect_slashes``) wrote the request's
Host header into an absolute Location, so a request with a forged Host was sent to that site."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from starlette.routing import Match


def slash_redirect(request: Request) -> Response | None:
    """A 307 (the method and body kept) to this path's twin, or None when no route has it."""
    path = request.scope["path"]
    twin = path.rstrip("/") if path.endswith("/") else path + "/"
    if not twin.startswith("/") or twin.startswith("//"):  # "/" itself; never another host
        return None
    scope = {**request.scope, "path": twin}
    if all(route.matches(scope)[0] is Match.NONE for route in request.app.router.routes):
        return None
    query = request.scope.get("query_string", b"").decode("latin-1")
    return RedirectResponse(quote(twin) + ("?" + query if query else ""), status_code=307)
