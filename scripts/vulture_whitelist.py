"""Names vulture cannot see used: set for a library, called by a framework or a protocol,
or required by a signature. Checked by ``scripts/test`` (``vulture``, configured in
pyproject.toml); add a name here only with the reason beside it."""

# ruff: noqa: B018, F821
# mypy: ignore-errors

# Signatures a caller imposes: signal handlers, __exit__, SQLAlchemy event listeners.
frame
ei  # logging.Formatter.formatException's, overridden (cli/output.py TerminalFormatter)
_.formatException
trace
executemany

# Attributes set for a library: the DB-API / SQLAlchemy drivers, Jinja2, pydantic.
_.isolation_level
_.autocommit
_.trim_blocks
_.lstrip_blocks
type_annotation_map
model_config
impl  # SQLAlchemy's TypeDecorator (store/models.py UtcDateTime), and its hooks:
cache_ok
_.process_bind_param
_.process_result_value

# asyncio's Transport interface (tls/handoff.py): called by the event loop and protocols.
_.can_write_eof
_.write_eof

# Read by templates (certificates_table.html) and serialised to JSON (API, CLI --json).
_.sort_url
private_key_deleted
_.alive  # a node's (status.html, the Node document)
_.alive_within  # the Node document's
_.adding  # networking.html: a node typed in the Add form, not an address's own row

# Used by the tests only: the check that SCHEMA_HEAD is the newest migration.
newest_migration

# Python's io protocol (service/backup.py's encrypting and decrypting streams: tarfile calls
# them) and tarfile.TarInfo fields set so that a backup holds no owner or time of the machine.
_.writable
_.readable
_.readinto
_.uid
_.gid
_.uname
_.gname
_.mtime
# Serialised to JSON (certgate restore --json).
backup_certgate

# Fields of documents (certgate/schemas.py) that only JSON reads.
removed
password_changed

# The deadline settings (service/tls_settings.py, their API documents): read by name
# (dataclasses.asdict, getattr over tls_settings' field list) and serialised to JSON.
handshake_timeout
header_timeout
body_timeout
send_timeout
keepalive_timeout

# uvicorn's H11Protocol (web/http11.py): attributes it reads, and asyncio's Protocol callback.
_.timeout_keep_alive
_.keep_alive
_.eof_received

# The address test's document (service/addresstest.py, schemas.NameTest): serialised to JSON.
browser_accepts

# A column written by keyword in an UPDATE (store/notices.finish): when a notice went.
_.sent_at

# The Problem document's ACME field (web/api/errors.py sets it by key): the CA's document.
ca_document

# The guard's concerns (service/guard.Concern, schemas.Concern): serialised to JSON (409
# unconfirmed-change) and shown by the Edit page's confirmation step.
current_certificate
new_certificate
current_root
new_root
# ... and the guide's warnings of the Edit page's confirmation step (web/pages/edit.py), read
# by its template.
guide

# Read by the acme library: the response a KeyAuthorizationChallenge makes (acme_ca.TLSALPN01).
response_cls
