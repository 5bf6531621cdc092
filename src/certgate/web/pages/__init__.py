"""The /appliance pages (server-rendered Jinja2 + htmx), one module per page of the guide."""

from fastapi import APIRouter

from certgate.web.pages import (
    acme,
    api_docs,
    audit,
    certificates,
    create,
    edit,
    email,
    export,
    import_,
    login,
    networking,
    requests,
    ssl,
    status,
    tokens,
    users,
)

router = APIRouter(include_in_schema=False)
# Fixed paths (create, import, action) before the ones with a certificate id.
for module in (
    login,
    status,
    audit,
    users,
    networking,
    certificates,
    create,
    import_,
    export,
    edit,
    requests,
    ssl,
    email,
    acme,
    tokens,
    api_docs,
):
    router.include_router(module.router)
