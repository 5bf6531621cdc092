"""The JSON API under /api/v1: every operation of the /appliance pages, through the service
layer, for scripts. Errors are RFC 9457 problem+json (see ``errors``)."""

from fastapi import APIRouter, Depends

from certgate.web.api import (
    acme,
    addresses,
    audit,
    certificates,
    email,
    exports,
    imports,
    nodes,
    requests,
    status,
    tls,
    tokens,
    users,
)
from certgate.web.api.media import json_bodies_only
from certgate.web.api.openapi import API_PREFIX

router = APIRouter(prefix=API_PREFIX, dependencies=[Depends(json_bodies_only)])
_MODULES = (
    certificates,
    exports,
    requests,
    imports,
    addresses,
    tls,
    email,
    acme,
    status,
    nodes,
    users,
    tokens,
    audit,
)
for module in _MODULES:
    router.include_router(module.router)
