"""The admin API: the audit log, the dead-letter queues, and replaying a dead letter.

Every route needs the ``admin`` role and its scope (``audit:read`` or ``jobs:admin``). The audit
log is read through the audit daemon's query API (``gateway.audit_reader``); the AMQP work is
``broker.DeadLetterQueues``'s; this module is HTTP only. A replay re-checks the dead
letter (authentic envelope, valid body, a type the gateway may send, a job still waiting),
re-seals the same body under a fresh gateway envelope that names the admin in its actor chain,
publishes it with confirms, and only then removes the dead letter; every replay and every
refused one is audited with the admin as actor. A letter another service sealed can only be
re-sealed by that service (DESIGN §6): for an authentic ``parse.requested`` of the worker the
gateway asks the worker again, with a fresh ``job.submitted`` for the job, and the worker
re-seals the parse request with its own key.
"""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass
from typing import Final

import structlog
from aiohttp import web
from pydantic import BaseModel, ValidationError

from broker import (
    QUEUE_BINDINGS,
    BrokerError,
    DeadLetter,
    DeadLetterQueues,
    EnvelopeError,
    PermanentFailure,
    ServiceRuntime,
    TakenDeadLetter,
    check_body_binding,
    exchange_for,
    extend_actor,
    unverified_claims,
)
from broker.deadletters import DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT
from gateway.appkeys import PUBLISHER_KEY, RUNTIME_KEY, STORE_KEY
from gateway.audit_reader import audit_reader
from gateway.auditing import audit
from gateway.auth import PRINCIPAL_KEY, Principal
from gateway.errors import BadRequest, Conflict, NotFound, Unavailable
from gateway.operations import Operation, Parameter
from schemas import EnvelopeClaims, ErrorBody, JobSubmitted, SchemaError, model_for
from schemas.api_admin import (
    AuditRecordList,
    DeadLetterList,
    DeadLetterView,
    ReplayAccepted,
)
from schemas.audit_query import (
    AUDIT_JOB_PATTERN,
    AUDIT_TYPE_PATTERN,
    DEFAULT_AUDIT_LIMIT,
    MAX_AUDIT_LIMIT,
    MAX_AUDIT_SEQ,
    MAX_AUDIT_TYPES,
    AuditQuery,
    AuditQueryError,
)
from store.transitions import TERMINAL_STATES

__all__ = [
    "OPERATIONS",
    "audit_listing",
    "audit_query",
    "dead_letter_listing",
    "dead_letter_queues",
    "replay_letter",
]

_log = structlog.get_logger("sealflow.gateway.admin")

SERVICE: Final = "gateway"
_ID: Final = re.compile(AUDIT_JOB_PATTERN)
RESEALED_BY: Final = {"parse.requested": "worker"}
"""Types another service seals that a replay asks that service to re-seal, and who it is."""


def _json(model: BaseModel, status: int = 200) -> web.Response:
    return web.Response(
        body=model.model_dump_json(exclude_none=True),
        status=status,
        content_type="application/json",
    )


# -- the audit log --------------------------------------------------------------------------


def _text_param(request: web.Request, name: str, *, pattern: re.Pattern[str] | None) -> str | None:
    values = request.query.getall(name, [])
    if not values:
        return None
    if len(values) > 1:
        raise BadRequest(f"{name} may be given once")
    value = values[0]
    if not 1 <= len(value) <= 255 or not value.isprintable():
        raise BadRequest(f"{name} must be 1 to 255 printable characters")
    if pattern is not None and pattern.match(value) is None:
        raise BadRequest(f"{name} is malformed")
    return value


def _limit(request: web.Request, default: int, high: int) -> int:
    values = request.query.getall("limit", [])
    if not values:
        return default
    raw = values[0]
    if len(values) > 1 or not raw.isdigit() or len(raw) > 6 or not 1 <= int(raw) <= high:
        raise BadRequest(f"limit must be an integer from 1 to {high}, given once")
    return int(raw)


def audit_query(request: web.Request) -> AuditQuery:
    """The request's audit filters, checked by the same parser the audit daemon uses."""
    try:
        return AuditQuery.parse(request.query.items())
    except AuditQueryError as error:
        raise BadRequest(str(error)) from error


async def audit_listing(request: web.Request) -> AuditRecordList:
    """The last ``limit`` audit records that pass the request's filters, oldest first
    (``audit tail``), read through the audit daemon's query API: for the API and the page."""
    query = audit_query(request)
    records = await audit_reader(request.app).records(query, actor=request[PRINCIPAL_KEY].subject)
    return AuditRecordList(records=records)


async def list_audit(request: web.Request) -> web.Response:
    """``GET /api/audit``: :func:`audit_listing` as JSON."""
    return _json(await audit_listing(request))


# -- dead letters ---------------------------------------------------------------------------

_QUEUES: Final = weakref.WeakKeyDictionary[ServiceRuntime, DeadLetterQueues]()


def dead_letter_queues(app: web.Application) -> DeadLetterQueues:
    """The app's view of the DLQs, on the broker runtime's connection (made on first use).

    Its one channel lives on the runtime's connection, so it closes when the runtime stops.
    """
    runtime = app[RUNTIME_KEY]
    queues = _QUEUES.get(runtime)
    if queues is None or queues.connection is not runtime.connection:
        if runtime.connection is None or runtime.connection.is_closed:
            raise Unavailable("the broker is not connected")
        queues = DeadLetterQueues(runtime.connection, runtime.topology)
        _QUEUES[runtime] = queues
    return queues


@dataclass(frozen=True, slots=True)
class _Checked:
    """What the gateway can say about a dead letter's envelope."""

    claims: EnvelopeClaims | None
    refusal: str | None
    """Why it may not be replayed, or None when it may."""


def _check_envelope(runtime: ServiceRuntime, letter: DeadLetter) -> _Checked:
    """Verify the dead letter's envelope and whether the gateway may re-seal its type."""
    try:
        claims = runtime.opener.verify_signature(
            letter.body, letter.headers, message_id=letter.message_id, message_type=letter.type
        )
    except EnvelopeError as error:
        return _Checked(None, f"its envelope does not verify ({error.reason})")
    if letter.never_replayable is not None:
        return _Checked(claims, letter.never_replayable)
    if claims.iss != SERVICE:
        if RESEALED_BY.get(claims.typ) == claims.iss:
            return _Checked(claims, None)  # the gateway asks its sender to re-seal it
        return _Checked(
            claims,
            f"it was sealed by {claims.iss}; the gateway re-seals only its own and asks the "
            f"worker for its parse requests",
        )
    if (
        exchange_for(claims.typ) != "jobs"
        or runtime.policy.required_scopes(SERVICE, claims.aud, claims.typ) is None
    ):
        return _Checked(claims, f"the gateway may not send {claims.typ} to {claims.aud}")
    return _Checked(claims, None)


def _letter_view(letter: DeadLetter, checked: _Checked) -> DeadLetterView:
    claims = checked.claims
    peeked = unverified_claims(letter.envelope) if claims is None else {}

    def peek(name: str) -> str | None:
        value = peeked.get(name)
        return value[:255] if isinstance(value, str) and value.isprintable() else None

    return DeadLetterView(
        id=letter.id,
        queue=letter.queue,
        type=letter.type,
        reason=letter.reason,
        detail=letter.detail,
        rejected_by=letter.rejected_by,
        rejected_at=letter.rejected_at,
        job=claims.job if claims is not None else letter.job,
        iss=claims.iss if claims is not None else peek("iss"),
        sub=claims.sub if claims is not None else peek("sub"),
        jti=claims.jti if claims is not None else peek("jti"),
        verified=claims is not None,
        replayable=checked.refusal is None,
        refusal=checked.refusal,
        size=letter.size,
        deaths=letter.deaths,
        deliveries=letter.deliveries,
        attempt=max(letter.attempt, 1),
    )


def _queue_param(request: web.Request) -> str | None:
    queue = _text_param(request, "queue", pattern=None)
    if queue is not None and queue not in QUEUE_BINDINGS:
        raise BadRequest(f"queue must be one of {', '.join(QUEUE_BINDINGS)}")
    return queue


async def dead_letter_listing(
    app: web.Application, *, limit: int = DEFAULT_LIST_LIMIT, queue: str | None = None
) -> DeadLetterList:
    """Dead letters across the namespace's DLQs (or one queue's), without consuming them;
    what the API answers and the admin page shows."""
    try:
        page = await dead_letter_queues(app).browse(limit=limit, queue=queue)
    except BrokerError as error:
        raise Unavailable(f"the dead-letter queues cannot be read: {error.detail}") from error
    views = [_letter_view(letter, await _check(app, letter)) for letter in page.letters]
    return DeadLetterList(messages=views, truncated=page.more)


async def list_dead_letters(request: web.Request) -> web.Response:
    """Dead letters across the namespace's DLQs, without consuming them."""
    limit = _limit(request, DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT)
    queue = _queue_param(request)
    return _json(await dead_letter_listing(request.app, limit=limit, queue=queue))


async def _refusal_for_job(
    app: web.Application, letter: DeadLetter, claims: EnvelopeClaims
) -> str | None:
    """Why the body may not be replayed: invalid, or its job is gone or already finished."""
    try:
        message = model_for(claims.typ).model_validate_json(letter.body)
    except (ValidationError, SchemaError):
        return f"its body does not validate as {claims.typ}"
    job_id = getattr(message, "job_id", None)
    if not isinstance(job_id, str):
        return "its body names no job"
    try:
        check_body_binding(claims, job_id=job_id, owner=getattr(message, "owner", None))
    except PermanentFailure as mismatch:
        return f"its body does not agree with its envelope: {mismatch.detail}"
    job = await app[STORE_KEY].get(job_id)
    if job is None:
        return f"job {job_id} no longer exists"
    if job.state in TERMINAL_STATES:
        return f"job {job_id} is already {job.state}"
    if claims.iss != SERVICE and claims.sub != job.owner:
        return f"it speaks for {claims.sub}, not for job {job_id}'s owner"
    return None


async def _check(app: web.Application, letter: DeadLetter) -> _Checked:
    """Every check a replay makes before it re-seals: the listing shows the same answer."""
    checked = _check_envelope(app[RUNTIME_KEY], letter)
    if checked.claims is None or checked.refusal is not None:
        return checked
    return _Checked(checked.claims, await _refusal_for_job(app, letter, checked.claims))


@dataclass(slots=True)
class _Replay:
    """How one replay went: the letter, its verified claims, and the answer or the refusal."""

    letter: DeadLetter
    claims: EnvelopeClaims | None = None
    refusal: str | None = None
    accepted: ReplayAccepted | None = None
    removed: bool = False


async def _replay(app: web.Application, admin: Principal, taken: TakenDeadLetter) -> _Replay:
    """Re-check a held dead letter; if it passes, re-seal, publish (confirmed), then ack it."""
    letter = taken.letter
    checked = await _check(app, letter)
    outcome = _Replay(letter, checked.claims, checked.refusal)
    claims = checked.claims
    if claims is None or outcome.refusal is not None:
        return outcome
    publisher = app[PUBLISHER_KEY]
    act = extend_actor({"sub": admin.subject}, SERVICE)
    if claims.iss == SERVICE:
        sealed = publisher.sealer.seal_body(
            letter.body,
            typ=claims.typ,
            aud=claims.aud,
            sub=claims.sub,
            job=claims.job,
            act=act,
            trace=claims.trace,
        )
    else:
        asked = await _ask_again(app, claims)
        if asked is None:
            outcome.refusal = "its job is gone or finished"
            return outcome
        sealed = publisher.sealer.seal(
            asked,
            aud=RESEALED_BY[claims.typ],
            sub=claims.sub,
            job=claims.job,
            act=act,
            trace=claims.trace,
        )
    await publisher.publish(sealed)
    outcome.accepted = ReplayAccepted(
        id=letter.id, jti=sealed.jti, queue=letter.queue, type=sealed.typ, job=claims.job
    )
    try:
        await taken.ack()
        outcome.removed = True
    except BrokerError as error:
        # Published but not removed: a later replay of the copy finds its job under way or
        # finished and is refused, and the worker's handling is idempotent besides.
        _log.error("dlq.ack_failed", id=letter.id, error=error.detail)
    return outcome


async def _ask_again(app: web.Application, claims: EnvelopeClaims) -> JobSubmitted | None:
    """The ``job.submitted`` that asks the worker to re-seal its parse request for a job."""
    job = await app[STORE_KEY].get(claims.job) if claims.job else None
    if job is None or job.state in TERMINAL_STATES:
        return None
    return JobSubmitted(
        job_id=job.job_id,
        owner=job.owner,
        filename=job.filename,
        content_type=job.content_type,
        size=job.size,
        blob_sha256=job.blob_sha256,
        submitted_at=job.created_at,
    )


async def replay_letter(app: web.Application, admin: Principal, letter_id: str) -> ReplayAccepted:
    """Re-check a dead letter, re-seal it for its receiver, publish it, then remove it; audited
    with ``admin`` as actor. ``NotFound``, or ``Conflict`` (``not_replayable``) with the reason;
    what the API answers and the admin page's Replay button does."""
    if _ID.match(letter_id) is None:
        raise NotFound("no dead letter with this id")
    outcome: _Replay | None = None
    try:
        async with dead_letter_queues(app).take(letter_id) as taken:
            if taken is not None:
                outcome = await _replay(app, admin, taken)
    except BrokerError as error:
        raise Unavailable(f"the dead letter was not replayed: {error.detail}") from error
    if outcome is None:
        raise NotFound("no dead letter with this id")
    await _audit_replay(app, admin, outcome)
    if outcome.accepted is None:
        raise Conflict(f"not replayable: {outcome.refusal}", reason="not_replayable")
    _log.info("dlq.replayed", id=letter_id, jti=outcome.accepted.jti, queue=outcome.letter.queue)
    return outcome.accepted


async def replay_dead_letter(request: web.Request) -> web.Response:
    """Re-check a dead letter, re-seal it for its receiver, publish it, then remove it."""
    accepted = await replay_letter(
        request.app, request[PRINCIPAL_KEY], request.match_info["letter_id"]
    )
    return _json(accepted, status=202)


async def _audit_replay(app: web.Application, admin: Principal, outcome: _Replay) -> None:
    letter, claims, accepted = outcome.letter, outcome.claims, outcome.accepted
    where = (
        f"dead letter {letter.id} (message {letter.message_id}) in {letter.queue}.dlq "
        f"({letter.reason})"
    )
    if accepted is None:
        detail = f"{where}: {outcome.refusal}"
    else:
        detail = f"{where} re-sealed as {accepted.jti}"
        if not outcome.removed:
            detail += "; the dead letter could not be removed"
    await audit(
        app,
        type="dlq.replayed" if accepted is not None else "dlq.replay_refused",
        action=f"replay {letter.type or 'unknown'}"[:64],
        outcome="success" if accepted is not None else "denied",
        actor=admin.subject,
        subject=claims.sub if claims is not None else None,
        reason=None if accepted is not None else "not_replayable",
        job=claims.job if claims is not None else None,
        trace=claims.trace if claims is not None else None,
        jti=accepted.jti if accepted is not None else (claims.jti if claims else None),
        detail=detail,
    )


# -- the catalogue --------------------------------------------------------------------------

_ERRORS: Final[dict[int, type[BaseModel] | None]] = {
    400: ErrorBody,
    401: ErrorBody,
    403: ErrorBody,
    503: ErrorBody,
}
_LIMIT_DOC: Final = "How many at most."

OPERATIONS: Final[tuple[Operation, ...]] = (
    Operation(
        "GET",
        "/api/audit",
        list_audit,
        "listAuditRecords",
        "Read the audit log (like `sealflow audit tail`)",
        "admin",
        scopes=("audit:read",),
        roles=("admin",),
        parameters=(
            Parameter(
                "type",
                "query",
                "Only events of this type (repeatable).",
                schema={
                    "type": "array",
                    "maxItems": MAX_AUDIT_TYPES,
                    "items": {"type": "string", "pattern": AUDIT_TYPE_PATTERN, "maxLength": 58},
                },
            ),
            Parameter(
                "actor",
                "query",
                "Only events by this actor.",
                schema={"type": "string", "minLength": 1, "maxLength": 255},
            ),
            Parameter(
                "job",
                "query",
                "Only events about this job.",
                schema={"type": "string", "pattern": _ID.pattern},
            ),
            Parameter(
                "since",
                "query",
                "Only records written since: ISO 8601 (UTC if no offset) or 10m, 2h, 1d.",
                schema={"type": "string", "maxLength": 64},
            ),
            Parameter(
                "limit",
                "query",
                _LIMIT_DOC + f" Default {DEFAULT_AUDIT_LIMIT}.",
                schema={"type": "integer", "minimum": 1, "maximum": MAX_AUDIT_LIMIT},
            ),
            Parameter(
                "after",
                "query",
                "Only records after this seq (a live tail's position).",
                schema={"type": "integer", "minimum": 0, "maximum": MAX_AUDIT_SEQ},
            ),
        ),
        responses={200: AuditRecordList, **_ERRORS},
        description=(
            "The last `limit` records that pass every filter, oldest first, read through the "
            "audit daemon's query API (503 when it does not answer)."
        ),
    ),
    Operation(
        "GET",
        "/api/dlq",
        list_dead_letters,
        "listDeadLetters",
        "List dead letters without consuming them",
        "admin",
        scopes=("jobs:admin",),
        roles=("admin",),
        parameters=(
            Parameter(
                "queue",
                "query",
                "Only this queue's DLQ.",
                schema={"type": "string", "enum": list(QUEUE_BINDINGS)},
            ),
            Parameter(
                "limit",
                "query",
                _LIMIT_DOC + f" Default {DEFAULT_LIST_LIMIT}.",
                schema={"type": "integer", "minimum": 1, "maximum": MAX_LIST_LIMIT},
            ),
        ),
        responses={200: DeadLetterList, **_ERRORS},
        description=(
            "AMQP cannot browse a queue: each message is fetched unacknowledged and returned at "
            "once, so a listing counts as one delivery of each message and, while it runs, "
            "hides them from other readers. A listing cut short by `limit` moves the messages "
            "it saw behind the others (RabbitMQ requeues at the back), so the next one shows "
            "the messages after them."
        ),
    ),
    Operation(
        "POST",
        "/api/dlq/{letter_id}/replay",
        replay_dead_letter,
        "replayDeadLetter",
        "Re-seal a dead letter and publish it again",
        "admin",
        scopes=("jobs:admin",),
        roles=("admin",),
        parameters=(
            Parameter(
                "letter_id",
                "path",
                "The dead letter's id (its `id` in the listing).",
                required=True,
                schema={"type": "string", "pattern": _ID.pattern},
            ),
        ),
        responses={
            202: ReplayAccepted,
            **_ERRORS,
            404: ErrorBody,
            409: ErrorBody,
        },
        description=(
            "Only an authentic `job.submitted` the gateway sealed, or `parse.requested` the "
            "worker sealed, whose job still waits, is replayable (409 `not_replayable` "
            "otherwise, and it stays in its DLQ). A `job.submitted` gets the same body in a "
            "fresh gateway envelope (same subject, job and trace; the actor chain names the "
            "admin). A `parse.requested` can only be re-sealed by the worker: the gateway sends "
            "the worker a fresh `job.submitted` for the job, and the worker answers it with a "
            "freshly sealed parse request. The dead letter is removed once the broker confirms "
            "the publish."
        ),
    ),
)
"""The admin routes; ``gateway.app.create_app`` registers them."""
