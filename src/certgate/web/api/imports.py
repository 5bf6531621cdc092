"""/imports: the Import page. Several files in one multipart request, any supported format
(found by content, not by name), one optional password; one result per object."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated

from fastapi import APIRouter, File, Form, Response, UploadFile
from fastapi.concurrency import run_in_threadpool

from certgate.pki.loader import MAX_FILE_SIZE
from certgate.schemas import ImportEntry, ImportResult
from certgate.service import imports
from certgate.service.import_process import import_files_apart
from certgate.web.api.deps import Admin, App
from certgate.web.api.errors import problem, problem_response
from certgate.web.api.openapi import problem_responses
from certgate.web.limits import MAX_IMPORT_BODY, MAX_IMPORT_FILES, mebibytes

router = APIRouter(tags=["import"])

_FORMATS = (
    "Accepted, as in the guide: DER or PEM X.509 certificates (.cer, .der, .crt, .pem, .b64), "
    "PKCS#7 certificates (.p7, .p7b, .p7c), PKCS#8 private keys (.p8), PKCS#12 certificates "
    "and/or private key (.p12, .pfx), OpenSSL legacy private keys (.key, .pem) and certificate "
    "requests. A CA-signed certificate links to the key of its request, a key to its "
    "certificate, a certificate to its issuer, whichever arrives first."
)


@router.post(
    "/imports",
    summary="Import certificates, keys and requests",
    response_model=ImportResult,
    responses=problem_responses(422),
    description=_FORMATS
    + " Answers 200 with one entry per object (status added, present, linked or error) when "
    "anything could be read; when no file could be read, a 422 problem whose `type` is the "
    "files' common failure (e.g. `wrong-password`, `not-a-certificate`) and whose `entries` "
    "say what happened to each file.",
    form_limits={"max_files": MAX_IMPORT_FILES, "max_fields": 16},
)
async def import_files(
    app: App,
    principal: Admin,
    files: Annotated[
        list[UploadFile],
        File(
            description=f"Up to {MAX_IMPORT_FILES} files, each at most "
            f"{mebibytes(MAX_FILE_SIZE)}, {mebibytes(MAX_IMPORT_BODY)} in all."
        ),
    ],
    password: Annotated[
        str | None,
        Form(
            max_length=1024,
            description="Opens encrypted PKCS#12 files and private keys.",
            json_schema_extra={"format": "password", "writeOnly": True},
        ),
    ] = None,
) -> Response:
    contents = [
        (upload.filename or f"file {number}", await upload.read(MAX_FILE_SIZE + 1))
        for number, upload in enumerate(files, start=1)
    ]
    secret = password.encode() if password else None
    status, media_type, body = await run_in_threadpool(
        import_files_apart, app, contents, secret, principal.actor, import_answer
    )
    return Response(body, status, media_type=media_type)


def import_answer(entries: list[imports.ImportEntry]) -> tuple[int, str, bytes]:
    """The answer's status, media type and body, made where the import ran (in its own
    process when large) and never on the event loop: checking and encoding the entries of
    100,000 certificates took about a second."""
    result = [ImportEntry.model_validate(entry, from_attributes=True) for entry in entries]
    response: Response
    if result and all(entry.status == "error" for entry in result):
        response = problem_response(_nothing_imported(result))
    else:
        document = ImportResult(entries=result).model_dump_json()
        response = Response(document, media_type="application/json")
    return response.status_code, str(response.media_type), bytes(response.body)


def _nothing_imported(entries: list[ImportEntry]) -> dict[str, object]:
    codes = {entry.error_code for entry in entries}
    code = codes.pop() if len(codes) == 1 and None not in codes else "import-format"
    return problem(
        str(code),
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "nothing was imported: " + "; ".join(f"{entry.file}: {entry.message}" for entry in entries),
        entries=[entry.model_dump() for entry in entries],
    )
