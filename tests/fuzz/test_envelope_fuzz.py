"""Fuzzing ``Opener.open``: arbitrary AMQP messages, random JOSE structures, and mutations of
valid sealed messages. ``open`` must only ever raise ``EnvelopeError`` and never accept any of
them; the unmutated original must open exactly once.

Default suite: ``DEFAULT_EXAMPLES`` inputs per property; ``-m slow``: ``SLOW_EXAMPLES``.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sealflow_testing import Env, EnvelopeKeys, job_message

from broker import (
    ENVELOPE_HEADER,
    ENVELOPE_TYP,
    RETRY_HEADER,
    EnvelopeError,
    Opener,
    Sealed,
    make_audit_event,
)
from schemas import ParseRequested

DEFAULT_EXAMPLES = 150
"""Per property in the default suite (seconds in all)."""
SLOW_EXAMPLES = int(os.environ.get("SEALFLOW_FUZZ_EXAMPLES", "10000"))
"""Per property under ``-m slow``; docs/security.md records the count behind its figures."""
pytestmark = pytest.mark.timeout(3600)  # the slow variants run for many minutes
_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def env(envelope_keys: EnvelopeKeys) -> Env:
    """One ``Env`` for the whole module (the properties never move its clock)."""
    return envelope_keys.env()


def _sealed_samples(env: Env) -> list[tuple[str, Sealed]]:
    """(receiver, sealed) for three message types from three senders with three algorithms."""
    job = job_message()
    request = ParseRequested(
        job_id=job.job_id,
        blob_sha256="b" * 64,
        filename="a.txt",
        content_type="text/plain",
        size=3,
        requested_at=datetime.now(UTC),
    )
    event = make_audit_event(
        source="parser", type="document.parsed", action="parse", outcome="success"
    )
    return [
        (
            "worker",
            env.sealer("gateway").seal(
                job,
                typ="job.submitted",
                aud="worker",
                sub="alice",
                job=job.job_id,
                act={"sub": "gateway"},
                trace="c" * 32,
            ),
        ),
        (
            "parser",
            env.sealer("worker").seal(
                request, typ="parse.requested", aud="parser", sub="alice", job=job.job_id
            ),
        ),
        (
            "audit",
            env.sealer("parser").seal(event, typ="audit.document.parsed", aud="audit", sub="alice"),
        ),
    ]


def _open(
    opener: Opener, body: Any, headers: Any, message_id: Any, message_type: Any, redelivered: bool
) -> None:
    """Open, and fail the test if anything but an ``EnvelopeError`` comes out or it is accepted."""
    try:
        opener.open(
            body, headers, message_id=message_id, message_type=message_type, redelivered=redelivered
        )
    except EnvelopeError:
        return
    pytest.fail("open accepted a message it must reject")


# --- 1. Arbitrary AMQP messages ------------------------------------------------------------

_header_values = st.one_of(
    st.none(),
    st.text(max_size=300),
    st.binary(max_size=300),
    st.integers(),
    st.lists(st.text(max_size=20), max_size=3),
    st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=3),
)
_headers = st.one_of(
    st.none(),
    st.dictionaries(
        st.sampled_from([ENVELOPE_HEADER, "x-other", "x-sealflow-attempt"]), _header_values
    ),
)


def _arbitrary(
    env: Env,
    body: bytes,
    headers: Any,
    message_id: str | None,
    message_type: str | None,
    redelivered: bool,
) -> None:
    _open(env.opener(), body, headers, message_id, message_type, redelivered)


_arbitrary_args = {
    "body": st.binary(max_size=2048),
    "headers": _headers,
    "message_id": st.none() | st.text(max_size=40),
    "message_type": st.none()
    | st.sampled_from(["job.submitted", "parse.requested", "audit.x"])
    | st.text(max_size=20),
    "redelivered": st.booleans(),
}
test_arbitrary_messages_are_rejected_with_envelope_error = settings(
    max_examples=DEFAULT_EXAMPLES,
    deadline=None,
    suppress_health_check=[*_HEALTH, HealthCheck.function_scoped_fixture],
)(given(**_arbitrary_args)(_arbitrary))
test_arbitrary_messages_are_rejected_with_envelope_error_slow = pytest.mark.slow(
    settings(
        max_examples=SLOW_EXAMPLES,
        deadline=None,
        suppress_health_check=[*_HEALTH, HealthCheck.function_scoped_fixture],
    )(given(**_arbitrary_args)(_arbitrary))
)


# --- 2. Random JOSE structures: headers and claims that parse, signatures that do not hold ---

_json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=30)
)
_json = st.recursive(
    _json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def _jose_tokens(draw: st.DrawFn, env: Env) -> tuple[str, bytes]:
    real_kid = draw(
        st.sampled_from([env.signing[s].kid for s in ("gateway", "worker", "parser", "identity")])
    )
    header: dict[str, Any] = {
        "alg": draw(
            st.sampled_from(["ES256", "EdDSA", "RS256", "none", "HS256", "ES384", "PS256", ""])
            | st.text(max_size=8)
        ),
        "kid": draw(st.sampled_from([real_kid, "", "unknown"]) | st.text(max_size=140)),
        "typ": draw(
            st.sampled_from([ENVELOPE_TYP, "JWT", "at+jwt", "sealflow-envelope+JWT"])
            | st.text(max_size=20)
        ),
    }
    for extra in draw(
        st.lists(st.sampled_from(["jku", "x5u", "jwk", "crit", "cty", "b64"]), max_size=2)
    ):
        header[extra] = draw(_json)
    for drop in draw(st.lists(st.sampled_from(["alg", "kid", "typ"]), max_size=2)):
        header.pop(drop, None)
    body = draw(st.binary(max_size=200))
    claims = draw(
        st.dictionaries(
            st.sampled_from(
                [
                    "iss",
                    "sub",
                    "aud",
                    "scope",
                    "iat",
                    "nbf",
                    "exp",
                    "jti",
                    "typ",
                    "dig",
                    "job",
                    "act",
                ]
            ),
            _json,
            max_size=12,
        )
    )
    signature = draw(st.binary(max_size=520))
    return _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode()) + "." + _b64(
        signature
    ), body


def _jose(env: Env, data: st.DataObject) -> None:
    token, body = data.draw(_jose_tokens(env))
    jti = data.draw(st.none() | st.text(max_size=40))
    service = data.draw(st.sampled_from(["worker", "parser", "audit", "gateway"]))
    _open(
        env.opener(service),
        body,
        {ENVELOPE_HEADER: token},
        jti,
        "job.submitted",
        data.draw(st.booleans()),
    )


test_random_jose_structures_are_rejected_with_envelope_error = settings(
    max_examples=DEFAULT_EXAMPLES,
    deadline=None,
    suppress_health_check=[*_HEALTH, HealthCheck.function_scoped_fixture],
)(given(data=st.data())(_jose))
test_random_jose_structures_are_rejected_with_envelope_error_slow = pytest.mark.slow(
    settings(
        max_examples=SLOW_EXAMPLES,
        deadline=None,
        suppress_health_check=[*_HEALTH, HealthCheck.function_scoped_fixture],
    )(given(data=st.data())(_jose))
)


# --- 3. Mutations of valid sealed messages ---------------------------------------------------

Mutation = Callable[[st.DataObject, dict[str, Any]], None]


_CHARACTERS = st.one_of(
    st.sampled_from("ABCxyz019-_=+/. "),  # base64url, standard base64, padding, separators
    st.characters(codec="utf-8", min_codepoint=0x80),  # non-ASCII
    st.characters(codec="utf-8"),
)


def _mutate_text(data: st.DataObject, text: str) -> str:
    """One edit of a string: replace, insert, delete a character, truncate, or duplicate a span."""
    choice = data.draw(
        st.sampled_from(["replace", "insert", "delete", "truncate", "duplicate", "case"])
    )
    i = data.draw(st.integers(0, max(len(text) - 1, 0)))
    if choice == "replace" and text:
        return text[:i] + data.draw(_CHARACTERS) + text[i + 1 :]
    if choice == "insert":
        return text[:i] + data.draw(st.text(_CHARACTERS, min_size=1, max_size=4)) + text[i:]
    if choice == "delete" and text:
        return text[:i] + text[i + 1 :]
    if choice == "truncate":
        return text[:i]
    if choice == "duplicate":
        j = data.draw(st.integers(i, len(text)))
        return text[:j] + text[i:j] + text[j:]
    return text.swapcase()


def _mutate_bytes(data: st.DataObject, raw: bytes) -> bytes:
    choice = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate", "append"]))
    i = data.draw(st.integers(0, max(len(raw) - 1, 0)))
    if choice == "flip" and raw:
        bit = 1 << data.draw(st.integers(0, 7))
        return raw[:i] + bytes([raw[i] ^ bit]) + raw[i + 1 :]
    if choice == "insert":
        return raw[:i] + data.draw(st.binary(min_size=1, max_size=4)) + raw[i:]
    if choice == "delete" and raw:
        return raw[:i] + raw[i + 1 :]
    if choice == "truncate":
        return raw[:i]
    return raw + data.draw(st.sampled_from([b" ", b"\n", b"{}", b"\x00"]))


def _resign_segment(data: st.DataObject, token: str) -> str:
    """Decode one segment, change the JSON inside, re-encode it (the signature no longer covers it)."""
    parts = token.split(".")
    index = data.draw(st.sampled_from([0, 1]))
    decoded = json.loads(base64.urlsafe_b64decode(parts[index] + "=" * (-len(parts[index]) % 4)))
    key = data.draw(st.sampled_from(sorted(decoded)))
    decoded[key] = data.draw(_json)
    parts[index] = _b64(json.dumps(decoded).encode())
    return ".".join(parts)


def _mutated(env: Env, data: st.DataObject) -> None:
    receiver, sealed = data.draw(st.sampled_from(_sealed_samples(env)))
    message: dict[str, Any] = {
        "body": sealed.body,
        "token": sealed.token,
        "message_id": sealed.jti,
        "message_type": sealed.typ,
    }
    target = data.draw(
        st.sampled_from(["token", "segment", "body", "message_id", "message_type", "receiver"])
    )
    if target == "token":
        message["token"] = _mutate_text(data, sealed.token)
    elif target == "segment":
        message["token"] = _resign_segment(data, sealed.token)
    elif target == "body":
        message["body"] = _mutate_bytes(data, sealed.body)
    elif target == "receiver":
        receiver = data.draw(
            st.sampled_from(sorted({"worker", "parser", "audit", "gateway"} - {receiver}))
        )
    else:
        message[target] = data.draw(
            st.none()
            | st.sampled_from([sealed.jti.upper(), sealed.typ, "job.completed"])
            | st.text(max_size=40)
        )
    assume(
        target == "receiver"
        or (message["body"], message["token"], message["message_id"], message["message_type"])
        != (sealed.body, sealed.token, sealed.jti, sealed.typ)
    )
    opener = env.opener(receiver)
    _open(
        opener,
        message["body"],
        {ENVELOPE_HEADER: message["token"]},
        message["message_id"],
        message["message_type"],
        False,
    )


test_mutated_sealed_messages_are_never_accepted = settings(
    max_examples=DEFAULT_EXAMPLES,
    deadline=None,
    suppress_health_check=[*_HEALTH, HealthCheck.function_scoped_fixture],
)(given(data=st.data())(_mutated))
test_mutated_sealed_messages_are_never_accepted_slow = pytest.mark.slow(
    settings(
        max_examples=SLOW_EXAMPLES,
        deadline=None,
        suppress_health_check=[*_HEALTH, HealthCheck.function_scoped_fixture],
    )(given(data=st.data())(_mutated))
)


# --- 4. Retry tickets beside a genuine envelope: forged, mutated or garbage ----------------


def _retried(env: Env, data: st.DataObject) -> None:
    """A genuine envelope whose handling was spent, with a forged, mutated or foreign ticket:
    it must never come back (the genuine ticket, unmutated, is the control below)."""
    receiver, sealed = data.draw(st.sampled_from(_sealed_samples(env)))
    opener = env.opener(receiver)
    opened = opener.open(
        sealed.body, sealed.headers(), message_id=sealed.jti, message_type=sealed.typ
    )
    opener.complete(opened.spent_id)
    genuine = env.sealer(receiver).seal_retry(opened.claims, 2)
    kind = data.draw(st.sampled_from(["mutated", "foreign", "jose", "garbage"]))
    if kind == "mutated":
        ticket: Any = _mutate_text(data, genuine)
        assume(ticket != genuine)
    elif kind == "foreign":
        other = data.draw(st.sampled_from(sorted({"gateway", "worker", "parser"} - {receiver})))
        ticket = env.sealer(other).seal_retry(opened.claims, data.draw(st.integers(2, 1000)))
    elif kind == "jose":
        ticket = data.draw(_jose_tokens(env))[0]
    else:
        ticket = data.draw(_header_values)
        assume(ticket is not None)
    headers = {**sealed.headers(), RETRY_HEADER: ticket}
    _open(opener, sealed.body, headers, sealed.jti, sealed.typ, data.draw(st.booleans()))


test_forged_retry_tickets_never_bring_a_spent_envelope_back = settings(
    max_examples=DEFAULT_EXAMPLES,
    deadline=None,
    suppress_health_check=[*_HEALTH, HealthCheck.function_scoped_fixture],
)(given(data=st.data())(_retried))


def test_the_genuine_retry_ticket_brings_each_sample_back_once(env: Env) -> None:
    """The control of the property above."""
    for receiver, sealed in _sealed_samples(env):
        opener = env.opener(receiver)
        opened = opener.open(
            sealed.body, sealed.headers(), message_id=sealed.jti, message_type=sealed.typ
        )
        opener.complete(opened.spent_id)
        headers = {
            **sealed.headers(),
            RETRY_HEADER: env.sealer(receiver).seal_retry(opened.claims, 2),
        }
        retried = opener.open(sealed.body, headers, message_id=sealed.jti, message_type=sealed.typ)
        assert retried.attempt == 2
        opener.complete(retried.spent_id)
        _open(opener, sealed.body, headers, sealed.jti, sealed.typ, False)


def test_the_unmutated_samples_open_exactly_once(env: Env) -> None:
    """The fuzz's control: every original opens, and its copy is then refused as a replay."""
    for receiver, sealed in _sealed_samples(env):
        opener = env.opener(receiver)
        opened = opener.open(
            sealed.body, sealed.headers(), message_id=sealed.jti, message_type=sealed.typ
        )
        assert opened.claims.jti == sealed.jti
        opener.complete(sealed.jti)
        with pytest.raises(EnvelopeError) as caught:
            opener.open(
                sealed.body, sealed.headers(), message_id=sealed.jti, message_type=sealed.typ
            )
        assert caught.value.reason == "replay"


def test_a_non_ascii_character_in_the_token_is_a_malformed_header(env: Env) -> None:
    """Found by the mutation fuzz: ``open`` raised ``UnicodeEncodeError`` (not an
    ``EnvelopeError``), so the consumer neither acked nor dead-lettered the message."""
    _receiver, sealed = _sealed_samples(env)[0]
    header, payload, signature = sealed.token.split(".")
    token = f"{header}.{payload[:10]}\x80{payload[11:]}.{signature}"
    with pytest.raises(EnvelopeError) as caught:
        env.opener().open(
            sealed.body, {ENVELOPE_HEADER: token}, message_id=sealed.jti, message_type=sealed.typ
        )
    assert caught.value.reason == "malformed_header"
