"""The JSON API under /api/v1: every operation of the /appliance pages, through the service
layer, for scripts. Errors are RFC 9457 problem+json (see ``errors``)."""

from fastapi import APIRouter

from certgate.web.api import (
    addresses,
    certificates,
    exports,
    imports,
    requests,
    status,
    tls,
    tokens,
    users,
)

router = APIRouter(prefix="/api/v1")
for module in (certificates, exports, requests, imports, addresses, tls, status, users, tokens):
    router.include_router(module.router)
