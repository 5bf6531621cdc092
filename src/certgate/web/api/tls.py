"""/tls: the SSL Configuration page (TLS versions, the TLS 1.2 ciphers, the HTTPS port, the
deadlines of connections and of stopping)."""

from __future__ import annotations

from fastapi import APIRouter

from certgate.schemas import TlsSettings, TlsSettingsChange
from certgate.service import tls_settings
from certgate.web.api.deps import Admin, App, Viewer
from certgate.web.api.openapi import problem_responses

router = APIRouter(prefix="/tls", tags=["tls"])


@router.get("", summary="Show the TLS settings")
def get_tls_settings(app: App, _: Viewer) -> TlsSettings:
    return TlsSettings.model_validate(tls_settings.get_settings(app))


@router.put("", summary="Change the TLS settings", responses=problem_responses(422))
def put_tls_settings(app: App, principal: Admin, body: TlsSettingsChange) -> TlsSettings:
    """Fields left out keep their value; the whole result is checked before it is stored,
    and the listeners apply it to new connections at once."""
    updated = tls_settings.update_settings(
        app,
        minimum_version=body.minimum_version,
        maximum_version=body.maximum_version,
        tls12_ciphers=body.tls12_ciphers,
        https_port=body.https_port,
        http_port=body.http_port,
        groups=body.groups,
        send_root=body.send_root,
        deadlines={d.name: getattr(body, d.name) for d in tls_settings.DEADLINE_SETTINGS},
        actor=principal.actor,
    )
    return TlsSettings.model_validate(updated)
