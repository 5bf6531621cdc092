"""/acme: Security > ACME, the account with an ACME CA and the certificates ordered from it.

The views are plain functions: FastAPI runs them on its thread pool, so an order (which
waits for the CA's validation, up to 90 s) never holds the event loop."""

from __future__ import annotations

from fastapi import APIRouter, Response

from certgate.schemas import (
    AcmeAccount,
    AcmeAccountChange,
    AcmeOrder,
    AcmeOrderRequest,
    AcmeRenewal,
    AcmeRenewalRequest,
)
from certgate.service import acme_account, acme_orders, acme_renewal
from certgate.web.api.deps import Admin, App, Viewer
from certgate.web.api.openapi import CREATED, problem_responses
from certgate.web.api.paths import OrderId, locate

router = APIRouter(prefix="/acme", tags=["acme"])


@router.get("/account", summary="Show the ACME account")
def get_acme_account(app: App, _: Viewer) -> AcmeAccount:
    """``configured`` is false until an account is registered. The key is never shown."""
    return AcmeAccount.model_validate(acme_account.get_account(app))


@router.put(
    "/account",
    summary="Register or change the ACME account",
    responses=problem_responses(422, 502),
)
def put_acme_account(app: App, principal: Admin, body: AcmeAccountChange) -> AcmeAccount:
    """Registers with the CA at once (a new directory or an external account binding
    makes a new account with a new key); the CA's refusal is a 502 problem (type `acme`)."""
    view = acme_account.set_account(
        app,
        directory=body.directory,
        email=body.email,
        agree_tos=body.agree_tos,
        ca_bundle=body.ca_bundle,
        eab_kid=body.eab_kid,
        eab_hmac_key=None if body.eab_hmac_key is None else body.eab_hmac_key.get_secret_value(),
        actor=principal.actor,
    )
    return AcmeAccount.model_validate(view)


@router.get("/orders", summary="List the ACME orders")
def list_acme_orders(app: App, _: Viewer) -> list[AcmeOrder]:
    """Newest first, each with its state and, when it failed, the CA's problem document."""
    return [AcmeOrder.model_validate(view) for view in acme_orders.list_orders(app)]


@router.get(
    "/orders/{order_id}",
    summary="Show one ACME order",
    responses=problem_responses(404, 422),
)
def get_acme_order(app: App, _: Viewer, order_id: OrderId) -> AcmeOrder:
    return AcmeOrder.model_validate(acme_orders.show_order(app, order_id))


@router.post(
    "/orders",
    summary="Order a certificate from the ACME CA",
    **CREATED,
    responses=problem_responses(404, 409, 422, 502),
)
def post_acme_order(
    app: App, principal: Admin, body: AcmeOrderRequest, response: Response
) -> AcmeOrder:
    """Answers when the order has ended: 201 with the issued certificate imported (and
    assigned to `assign`), or a 502 problem (type `acme`) with the CA's document; the
    order is listed either way. The running `certgate serve` answers the challenge: http-01
    on its plain HTTP port, tls-alpn-01 on its HTTPS port (a 409 `acme-not-ready` when none
    would). An assignment the guard would stop (another root on an address, its hostnames
    not covered) is a 409 `unconfirmed-change` before the order is placed, unless
    `confirm`."""
    view = acme_orders.place_order(
        app,
        name=body.friendly_name,
        domains=body.domains,
        key=body.key,
        assign=body.assign,
        challenge=body.challenge,
        actor=principal.actor,
        confirm=body.confirm,
    )
    locate(response, router.prefix + "/orders", view.id)
    return AcmeOrder.model_validate(view)


@router.post(
    "/renewals",
    summary="Renew the ACME certificates that are due",
    responses=problem_responses(404, 422),
)
def post_acme_renewals(app: App, principal: Admin, body: AcmeRenewalRequest) -> list[AcmeRenewal]:
    """What `certgate serve` does hourly, now: every certificate an order issued that is due
    (a third of its validity left), every one with `force`, or only `certificate_id`'s. Each
    renewal is taken under a lease (`busy` when another renewer holds it); a failure is one
    entry (`failed`, with the CA's words), retried after a backoff."""
    outcomes = acme_renewal.renew(app, body.certificate_id, force=body.force, actor=principal.actor)
    return [AcmeRenewal.model_validate(outcome) for outcome in outcomes]
