"""Security > ACME: the account with an ACME CA, the order form, and every order with its
state and the CA's problem document. Registering and ordering talk to the CA (an order waits
for its validation): both run on a thread, never on the event loop."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from certgate.errors import (
    AcmeError,
    AcmeNotReadyError,
    NotFoundError,
    UnassignedCertificateError,
    UnconfirmedChangeError,
    ValidationError,
)
from certgate.fields import ACME_NAMES_HELP
from certgate.pki.keys import DEFAULT_KEY_SPEC, KeySpec
from certgate.service import acme_account, acme_orders, acme_renewal, networking
from certgate.service.auth import Principal
from certgate.web.pages.access import Poster, call, page_view
from certgate.web.pages.confirmation import Confirmation, confirmation_step
from certgate.web.pages.forms import admin_form, checked, field_errors, number, texts, typed
from certgate.web.pages.rendering import PREFIX, redirect, render

router = APIRouter()
PAGE = PREFIX + "/security/acme"
ACCOUNT_INPUTS = ("directory", "email", "agree_tos", "ca_bundle", "eab_kid", "eab_hmac_key")
ORDER_INPUTS = ("friendly_name", "domains", "key", "assign", "challenge")
CUSTOM = "custom"


async def _page(
    request: Request,
    principal: Principal,
    account_values: dict[str, str] | None = None,
    order_values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    confirmation: Confirmation | None = None,
) -> Response:
    account = await call(request, acme_account.get_account)
    orders = await call(request, acme_orders.list_orders)
    addresses = await call(request, networking.list_addresses)
    if account_values is None:
        account_values = {
            "preset": account.preset or (CUSTOM if account.configured else "letsencrypt-staging"),
            "directory": "" if account.preset else (account.directory_url or ""),
            "email": account.email or "",
            "ca_bundle": account.ca_bundle or "",
            "eab_kid": account.eab_kid or "",
        }
    return render(
        request,
        "acme.html",
        {
            "title": "Security :: ACME",
            "section": "security",
            "subsection": "acme",
            "account": account,
            "orders": orders,
            "addresses": [view.address for view in addresses],
            "presets": list(acme_account.Preset),
            "key_specs": list(KeySpec),
            "challenges": list(acme_orders.ChallengeType),
            "domains_help": ACME_NAMES_HELP,
            "account_values": account_values,
            "order_values": order_values or {"key": DEFAULT_KEY_SPEC.value, "assign": ""},
            "errors": errors or {},
            "confirmation": confirmation,
        },
        principal=principal,
        status_code=status_code,
    )


router.get(PAGE)(page_view(_page))


@router.post(PAGE + "/account")
async def save_account(request: Request, principal: Poster) -> Response:
    form = await admin_form(request, principal, "changing the ACME account")
    values = typed(form, ("preset", *ACCOUNT_INPUTS))
    directory = values["directory"] if values["preset"] == CUSTOM else values["preset"]
    try:
        await call(
            request,
            acme_account.set_account,
            directory=directory,
            email=values["email"],
            agree_tos=checked(form, "agree_tos"),
            ca_bundle=values["ca_bundle"],
            eab_kid=values["eab_kid"] or None,
            eab_hmac_key=values["eab_hmac_key"] or None,
            actor=principal.actor,
        )
    except ValidationError as error:
        values.pop("eab_hmac_key")
        errors = field_errors(error, ACCOUNT_INPUTS)
        return await _page(request, principal, values, None, errors, 422)
    except AcmeError as error:
        values.pop("eab_hmac_key")
        return await _page(request, principal, values, None, {"form": str(error)}, 502)
    return redirect(PAGE, "ACME account saved.")


@router.post(PAGE + "/orders")
async def place_order(request: Request, principal: Poster) -> Response:
    form = await admin_form(request, principal, "ordering a certificate")
    values = typed(form, ORDER_INPUTS)
    assign = texts(form, "assign")
    values["assign"] = " ".join(assign)
    try:
        order = await call(
            request,
            acme_orders.place_order,
            name=values["friendly_name"],
            domains=values["domains"].split(),
            key=values["key"] or DEFAULT_KEY_SPEC.value,
            assign=assign,
            challenge=values["challenge"] or acme_orders.ChallengeType.HTTP_01.value,
            actor=principal.actor,
            confirm=checked(form, "confirm"),
        )
    except UnassignedCertificateError as error:
        return redirect(PAGE, f"{error}.", "error")
    except UnconfirmedChangeError as error:
        fields = [(name, values[name]) for name in ORDER_INPUTS if name != "assign"]
        fields += [("assign", address) for address in assign]
        step = confirmation_step(error, PAGE + "/orders", fields, cancel=PAGE)
        return await _page(request, principal, None, values, confirmation=step)
    except ValidationError as error:
        errors = field_errors(error, ORDER_INPUTS, "order-")
        return await _page(request, principal, None, values, errors, 422)
    except (AcmeError, AcmeNotReadyError, NotFoundError) as error:  # beside it, as typed
        errors = {"order-form": f"The certificate was not issued: {error}"}
        return await _page(request, principal, None, values, errors, error.status)
    return redirect(
        PAGE, f"Certificate {order.friendly_name!r} issued (order {order.id}) and imported."
    )


@router.post(PAGE + "/renew/{certificate_id}")
async def renew_now(request: Request, principal: Poster, certificate_id: str) -> Response:
    principal.require_admin("renewing a certificate")
    wanted = number(certificate_id)
    if wanted is None:
        raise NotFoundError(f"there is no certificate {certificate_id!r}")
    [outcome] = await call(request, acme_renewal.renew, wanted, force=True, actor=principal.actor)
    if outcome.renewed_by is None:
        return redirect(
            PAGE,
            f"{outcome.friendly_name!r} was not renewed: {outcome.error or outcome.state}.",
            "error",
        )
    return redirect(
        PAGE,
        f"{outcome.friendly_name!r} renewed (order {outcome.renewed_by.id}); the new "
        "certificate secures its addresses.",
    )
