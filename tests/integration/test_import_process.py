"""A large import from the pages or the API runs in a process of its own (so that serving
processes keep answering while it reads), with the same entries, store and errors as on a
thread."""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable

import pytest

from certgate.errors import MasterKeyMissingError, ValidationError
from certgate.service import certificates, imports
from certgate.service.appliance import Appliance
from certgate.service.import_process import ISOLATE_ABOVE, import_files_apart
from certgate.store.audit import Actor
from certgate.store.sealing import MASTER_KEY_FILE
from certgate.web.api import imports as api_imports
from tests.support.pki import fingerprint, make_chain, pem

ACTOR = Actor("admin", "127.0.0.1")


def large_bundle() -> tuple[bytes, list[str]]:
    """A chain and its leaf's key, with explanatory text around it (as a CA's bundle may
    have) making it larger than what is imported on a thread."""
    chain = make_chain("apart.example.test")
    words = b"# issued by the test CA for the import process test\n"
    padding = words * (ISOLATE_ABOVE // len(words) + 1)
    content = padding + pem(chain.leaf, chain.leaf_key, chain.intermediate, chain.root)
    return content, [fingerprint(chain.leaf), fingerprint(chain.intermediate)]


def test_a_large_import_in_its_own_process_imports_the_same(
    new_appliance: Callable[[], Appliance],
) -> None:
    app, twin = new_appliance(), new_appliance()
    content, (leaf, intermediate) = large_bundle()
    assert len(content) > ISOLATE_ABOVE
    apart = import_files_apart(app, [("bundle.pem", content)], None, ACTOR, list)
    on_a_thread = imports.import_files(twin, [("bundle.pem", content)], None, ACTOR)
    assert apart == on_a_thread  # entries, ids and messages alike
    assert sorted(entry.kind for entry in apart) == [
        "certificate",
        "certificate",
        "certificate",
        "private-key",
    ] and all(entry.status != "error" for entry in apart)
    shown = certificates.show_certificate(app, leaf)  # this process sees the child's commit
    assert shown.has_private_key and shown.chain[1] == intermediate


def test_an_error_of_the_child_is_raised_here_as_it_was(
    new_appliance: Callable[[], Appliance],
) -> None:
    app = new_appliance()
    (app.data_dir / MASTER_KEY_FILE).rename(app.data_dir / "elsewhere.key")
    content, _ = large_bundle()
    with pytest.raises(MasterKeyMissingError, match=r"master key file .* is missing"):
        import_files_apart(app, [("bundle.pem", content)], None, ACTOR, list)


def test_every_certgate_error_survives_the_pipe() -> None:
    """Subclasses whose __init__ takes other arguments than the message pickle whole."""
    error = ValidationError("subject.common_name", "enter a name")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is ValidationError
    assert str(copy) == str(error) and copy.__dict__ == error.__dict__


def test_the_api_answer_of_a_large_import_is_made_where_it_ran(
    new_appliance: Callable[[], Appliance],
) -> None:
    """The API's answer (schema-checked entries, encoded) comes back from the child whole, as
    a small import's is made on a thread."""
    app, twin = new_appliance(), new_appliance()
    content, _ = large_bundle()
    status, media_type, body = import_files_apart(
        app, [("bundle.pem", content)], None, ACTOR, api_imports.import_answer
    )
    entries = imports.import_files(twin, [("bundle.pem", content)], None, ACTOR)
    assert (status, media_type) == (200, "application/json")
    assert body == api_imports.import_answer(entries)[2]
    assert len(json.loads(body)["entries"]) == 4
    garbage = b"not a certificate\n" * (ISOLATE_ABOVE // 18 + 1)
    status, media_type, body = import_files_apart(
        app, [("garbage.pem", garbage)], None, ACTOR, api_imports.import_answer
    )
    assert (status, media_type) == (422, "application/problem+json")
    assert json.loads(body)["entries"][0]["file"] == "garbage.pem"
