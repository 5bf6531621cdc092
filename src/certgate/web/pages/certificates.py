"""Security > Certificates: Certificate Installation, the Certificates table (search, filter,
sort, pages; Select Action: Export, Delete) and the Certificate Requests table."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from certgate.errors import CertgateError
from certgate.pki.chain import Role
from certgate.pki.diagnostics import WarningCode
from certgate.service import certificates, guard, requests
from certgate.service.certificates import ANY_WARNING, CertificateQuery, SortKey
from certgate.web.pages.access import Poster, Viewer, call
from certgate.web.pages.forms import (
    admin_form,
    checked,
    identifiers,
    number,
    read_form,
    text,
    texts,
)
from certgate.web.pages.rendering import PREFIX, is_htmx, redirect, render

router = APIRouter()
PAGE = PREFIX + "/security/certificates"
PAGE_SIZES = (25, 50, 100, 250)
#: The sortable columns (the id is the default order, not a column).
SORTS = {key.value: key.label for key in SortKey if key is not SortKey.ID}
ROLES = {Role.SERVER: "Server certificates", Role.INTERMEDIATE: "Intermediates", Role.ROOT: "Roots"}
#: The filter offers every warning certgate derives.
WARNINGS = {ANY_WARNING: "With warnings", **{code.value: code.label for code in WarningCode}}


@dataclass(frozen=True)
class TableState:
    """The table's query string, read leniently: a bad value falls back to the default."""

    q: str = ""
    role: str = ""
    key: str = ""
    warning: str = ""
    sort: str = "id"
    order: str = "asc"
    page: int = 1
    per: int = 100

    @classmethod
    def read(cls, params: dict[str, str]) -> TableState:
        def positive(name: str, default: int) -> int:
            found = number(params.get(name, ""))
            return found if found is not None and found > 0 else default

        per = positive("per", 100)
        return cls(
            q=params.get("q", "").strip()[:200],
            role=params.get("role", "") if params.get("role") in ROLES else "",
            key=params.get("key", "") if params.get("key") in ("yes", "no") else "",
            warning=params.get("warning", "") if params.get("warning") in WARNINGS else "",
            sort=params.get("sort", "") if params.get("sort") in SORTS else "id",
            order="desc" if params.get("order") == "desc" else "asc",
            page=positive("page", 1),
            per=per if per in PAGE_SIZES else 100,
        )

    def query(self) -> CertificateQuery:
        return CertificateQuery(
            text=self.q,
            role=self.role or None,
            has_private_key={"yes": True, "no": False}.get(self.key),
            warning=self.warning or None,
            sort=self.sort,
            descending=self.order == "desc",
            offset=(self.page - 1) * self.per,
            limit=self.per,
        )

    def url(self, **changes: Any) -> str:
        """This table's address with some parameters changed (defaults left out)."""
        values = {**self.__dict__, **changes}
        defaults = TableState().__dict__
        kept = {name: value for name, value in values.items() if value != defaults[name]}
        return PAGE + ("?" + urlencode(kept) if kept else "")

    def sort_url(self, column: str) -> str:
        descending = self.sort == column and self.order == "asc"
        return self.url(sort=column, order="desc" if descending else "asc", page=1)


@router.get(PAGE)
async def certificates_page(request: Request, principal: Viewer) -> Response:
    state = TableState.read(dict(request.query_params))
    found = await call(request, certificates.query_certificates, state.query())
    pages = max(1, -(-found.total // state.per))
    if state.page > pages:  # past the end (after a filter or a delete): show the last page
        state = dataclasses.replace(state, page=pages)
        found = await call(request, certificates.query_certificates, state.query())
    context: dict[str, Any] = {
        "title": "Security :: Certificates",
        "section": "security",
        "subsection": "certificates",
        "state": state,
        "found": found,
        "pages": pages,
        "sorts": SORTS,
        "roles": ROLES,
        "warnings": WARNINGS,
        "page_sizes": PAGE_SIZES,
    }
    if is_htmx(request) and request.headers.get("hx-target") == "certificates":
        return render(request, "certificates_table.html", context, principal=principal)
    context["requests"] = await call(request, requests.list_requests)
    return render(request, "certificates.html", context, principal=principal)


@router.post(PAGE + "/action")
async def apply_action(request: Request, principal: Poster) -> Response:
    """The Select Action menu: Export (one certificate) or Delete (after a confirmation)."""
    form = await read_form(request)
    action, ids = text(form, "action"), identifiers(texts(form, "id"))
    back = text(form, "back") if text(form, "back").startswith(PAGE) else PAGE
    if not ids:
        return redirect(back, "Check the box of a certificate first.", "error")
    if action == "export":
        if len(ids) > 1:
            return redirect(back, "Export one certificate at a time.", "error")
        return redirect(f"{PAGE}/{ids[0]}/export")
    if action != "delete":
        return redirect(back, "Choose an action in the Select Action menu.", "error")
    principal.require_admin("deleting certificates")
    chosen = [await call(request, certificates.show_certificate, i) for i in ids]
    if all(view.is_factory for view in chosen):
        return redirect(back, "The factory default configuration may not be removed.", "error")
    broken = {
        view.id: await call(request, certificates.chains_broken_by_deletion, view.id)
        for view in chosen
        if not view.is_factory
    }
    return render(
        request,
        "delete_confirm.html",
        {
            "title": "Security :: Certificates :: Delete",
            "section": "security",
            "subsection": "certificates",
            "chosen": chosen,
            "secures_addresses": any(view.ip_addresses for view in chosen),
            "guide_ca_warning": guard.GUIDE_CA_WARNING,
            "broken": broken,
            "back": back,
        },
        principal=principal,
    )


@router.post(PAGE + "/delete")
async def delete_certificates(request: Request, principal: Poster) -> Response:
    form = await admin_form(request, principal, "deleting certificates")
    reassign = checked(form, "reassign_to_factory")
    deleted: list[str] = []
    incomplete: list[str] = []
    failed: list[str] = []
    for certificate_id in identifiers(texts(form, "id")):
        try:
            done = await call(
                request,
                certificates.delete_certificate,
                certificate_id,
                reassign_to_factory=reassign,
                actor=principal.actor,
            )
            deleted.append(done.friendly_name)
            if done.chains_incomplete:
                incomplete.extend(done.chains_incomplete)
        except CertgateError as error:
            failed.append(str(error))
    message = " ".join(
        ([f"Deleted: {', '.join(deleted)}."] if deleted else [])
        + ([f"Chain now incomplete: {', '.join(incomplete)}."] if incomplete else [])
        + [f"Not deleted: {reason}." for reason in failed]
    )
    return redirect(PAGE, message or "Nothing was selected.", "error" if failed else "ok")
