"""Login and logout.

The login form has no session yet, so its CSRF token is a double-submit cookie (SameSite=
Strict: another site cannot post a login into someone's browser). Its name is ``__Host-``
prefixed, so only this host sets it: a sibling subdomain is the same site (SameSite lets its
posts through) and could set ``certgate_login_csrf`` for the parent domain, then post a
login with that token and its own account's password into a visitor's browser."""

from __future__ import annotations

import secrets
from urllib.parse import unquote, urlsplit

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from certgate.errors import AuthenticationError, ThrottledError
from certgate.service import auth
from certgate.web.api.errors import retry_after
from certgate.web.pages.access import Poster, call
from certgate.web.pages.errors import answers_get
from certgate.web.pages.forms import read_form, text
from certgate.web.pages.rendering import PREFIX, redirect, render, sentence
from certgate.web.security import CSRF_FIELD, SESSION_COOKIE, client_address, principal_of

router = APIRouter()
LOGIN_CSRF_COOKIE = "__Host-certgate_login_csrf"  # Secure, Path=/, no Domain: this host's


def safe_next(request: Request, target: str) -> str:
    """Only a page of this interface: never another site (``//host``, ``/\\host``), nor a
    path no GET answers (``/appliance/logout``, a form's action: a 405 after the login)."""
    if not target.startswith(PREFIX) or target.startswith(("//", "/\\")) or "\\" in target:
        return PREFIX
    return target if answers_get(request, unquote(urlsplit(target).path)) else PREFIX


def _login_page(
    request: Request, next_url: str, error: str = "", status: int = 200, username: str = ""
) -> Response:
    """The form; after a refused attempt, with the username typed (never the password)."""
    token = secrets.token_urlsafe(32)
    context = {
        "title": "Log in",
        "login_csrf": token,
        "next_url": next_url,
        "error": error,
        "username": username,
    }
    response = render(request, "login.html", context, status_code=status)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        path="/",
        secure=True,
        httponly=True,
        samesite="strict",
    )
    return response


@router.get(PREFIX + "/login")
async def login_form(request: Request, next: str = PREFIX) -> Response:
    if await run_in_threadpool(principal_of, request) is not None:
        return redirect(safe_next(request, next))
    return _login_page(request, safe_next(request, next))


@router.post(PREFIX + "/login")
async def login(request: Request) -> Response:
    form = await read_form(request)
    next_url, username = safe_next(request, text(form, "next", PREFIX)), text(form, "username")
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    presented = text(form, CSRF_FIELD)
    if not auth.secret_matches(presented, expected):
        expired = "The login form had expired. Please try again."
        return _login_page(request, next_url, expired, 403, username)
    throttle = request.app.state.throttle
    try:
        attempt = await call(request, auth.begin_login, username, client_address(request), throttle)
        await anyio.sleep(attempt.delay)  # slowed down, not locked: no thread is held
        session = await call(
            request,
            auth.finish_login,
            attempt,
            text(form, "password"),
            throttle,
            request.cookies.get(SESSION_COOKIE),
        )
    except ThrottledError as error:  # even the right password, until the wait is over
        refused = _login_page(request, next_url, sentence(str(error)), error.status, username)
        refused.headers.update(retry_after(error))
        return refused
    except AuthenticationError as error:  # wrong username or password
        return _login_page(request, next_url, sentence(str(error)), error.status, username)
    response = redirect(next_url)
    response.set_cookie(
        SESSION_COOKIE,
        session.cookie_value,
        path="/",
        secure=True,
        httponly=True,
        samesite="strict",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/", secure=True, httponly=True)
    return response


@router.post(PREFIX + "/logout")
async def logout(request: Request, _: Poster) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        await call(request, auth.logout, cookie, client_address(request))
    response = redirect(PREFIX + "/login", "You have logged out.")
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True)
    return response
