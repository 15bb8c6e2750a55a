"""``Opener.verify_signature``: authenticity without freshness, audience, policy or replay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sealflow_testing import NOW, Env, job_message

from broker import ENVELOPE_HEADER, EnvelopeError, Reason, RevocationList, Sealed, Sealer
from keys import SigningKey
from schemas import Revocation


def _sealed(env: Env, sealer: Sealer | None = None) -> Sealed:
    message = job_message()
    return (sealer or env.sealer("gateway")).seal(
        message, typ="job.submitted", aud="worker", sub="alice", job=message.job_id
    )


def _verify(env: Env, sealed: Sealed, **kwargs: object) -> object:
    opener = env.opener("gateway", **kwargs)
    return opener.verify_signature(
        sealed.body, sealed.headers(), message_id=sealed.jti, message_type=sealed.typ
    )


def test_an_expired_envelope_for_another_audience_still_verifies(env: Env) -> None:
    sealed = _sealed(env)
    env.clock.now = NOW + 3600  # long expired; addressed to worker, verified by the gateway
    opener = env.opener("gateway")
    claims = opener.verify_signature(
        sealed.body, sealed.headers(), message_id=sealed.jti, message_type=sealed.typ
    )
    assert (claims.iss, claims.aud, claims.sub, claims.jti) == (
        "gateway",
        "worker",
        "alice",
        sealed.jti,
    )
    with pytest.raises(EnvelopeError) as caught:
        opener.open(sealed.body, sealed.headers(), message_id=sealed.jti, message_type=sealed.typ)
    assert caught.value.reason is Reason.EXPIRED


def test_verifying_neither_reads_nor_spends_the_jti(env: Env) -> None:
    sealed = _sealed(env)
    opener = env.opener("worker")
    for _ in range(2):
        opener.verify_signature(
            sealed.body, sealed.headers(), message_id=sealed.jti, message_type=sealed.typ
        )
    opened = opener.open(
        sealed.body, sealed.headers(), message_id=sealed.jti, message_type=sealed.typ
    )
    opener.complete(opened.claims.jti)
    # A spent jti does not stop verification either: that is why a dead letter may be replayed.
    opener.verify_signature(
        sealed.body, sealed.headers(), message_id=sealed.jti, message_type=sealed.typ
    )


def test_a_key_nobody_trusts_is_refused(env: Env) -> None:
    rogue = SigningKey(
        service="gateway",
        kid="rogue-kid",
        alg="ES256",
        private_key=ec.generate_private_key(ec.SECP256R1()),
    )
    with pytest.raises(EnvelopeError) as caught:
        _verify(env, _sealed(env, Sealer(rogue, clock=env.clock)))
    assert caught.value.reason is Reason.UNKNOWN_KID


def test_a_tampered_signature_body_or_property_is_refused(env: Env) -> None:
    sealed = _sealed(env)
    opener = env.opener("gateway")
    bad_token = sealed.token[:-4] + ("AAAA" if not sealed.token.endswith("AAAA") else "BBBB")
    cases: list[tuple[bytes, dict[str, object], str, str, set[Reason]]] = [
        (
            sealed.body,
            {ENVELOPE_HEADER: bad_token},
            sealed.jti,
            sealed.typ,
            {Reason.BAD_SIGNATURE, Reason.MALFORMED_HEADER},
        ),
        (
            sealed.body.replace(b"alice", b"mallo"),
            dict(sealed.headers()),
            sealed.jti,
            sealed.typ,
            {Reason.DIGEST_MISMATCH},
        ),
        (sealed.body, dict(sealed.headers()), "0" * 32, sealed.typ, {Reason.JTI_MISMATCH}),
        (sealed.body, dict(sealed.headers()), sealed.jti, "job.failed", {Reason.TYPE_MISMATCH}),
        (sealed.body, {}, sealed.jti, sealed.typ, {Reason.MISSING_HEADER}),
        (sealed.body, {ENVELOPE_HEADER: "a.b"}, sealed.jti, sealed.typ, {Reason.MALFORMED_HEADER}),
    ]
    for body, headers, message_id, message_type, reasons in cases:
        with pytest.raises(EnvelopeError) as caught:
            opener.verify_signature(body, headers, message_id=message_id, message_type=message_type)
        assert caught.value.reason in reasons


def test_a_kid_of_another_service_is_refused(env: Env) -> None:
    worker_key = env.signing["worker"]
    impostor = SigningKey(
        service="gateway",
        kid=worker_key.kid,
        alg=worker_key.alg,
        private_key=worker_key.private_key,
    )
    with pytest.raises(EnvelopeError) as caught:
        _verify(env, _sealed(env, Sealer(impostor, clock=env.clock)))
    assert caught.value.reason is Reason.KID_ISSUER_MISMATCH


@pytest.mark.parametrize("kind", ["kid", "jti", "sub"])
def test_a_revoked_kid_jti_or_subject_is_refused(env: Env, kind: str) -> None:
    sealed = _sealed(env)
    value = {"kid": env.signing["gateway"].kid, "jti": sealed.jti, "sub": "alice"}[kind]
    revocations = RevocationList()
    revocations.add(
        Revocation.model_validate(
            {
                "revocation_id": "f" * 32,
                "kind": kind,
                "value": value,
                "reason": "compromised",
                "issued_at": datetime.fromtimestamp(NOW - 60, UTC),
                "until": datetime.fromtimestamp(NOW, UTC) + timedelta(hours=1),
            },
            strict=False,
        )
    )
    with pytest.raises(EnvelopeError) as caught:
        _verify(env, sealed, revocations=revocations)
    assert caught.value.reason is Reason.REVOKED


@pytest.mark.parametrize(
    "header",
    [
        b"e" * 5000,  # over the header bound, as bytes
        "e" * 5000,  # over the header bound, as text
        "é.b.c".encode(),  # not ASCII, as bytes
        "é.b.c",  # not ASCII, as text
        b"a.b",
        12345,
    ],
    ids=["long-bytes", "long-text", "utf8-bytes", "utf8-text", "two-parts", "not-text"],
)
def test_verify_signature_refuses_exactly_as_open_does(env: Env, header: object) -> None:
    """Issue 13 §2: ``verify_signature`` had its own copy of ``open``'s checks and drifted
    (it decoded bytes with ``errors="replace"`` and told an oversized header apart from
    nothing); both now run one routine, so every malformed header gets the same answer."""
    sealed = _sealed(env)
    opener = env.opener("worker")
    answers = []
    for check in (opener.open, opener.verify_signature):
        with pytest.raises(EnvelopeError) as caught:
            check(
                sealed.body,
                {ENVELOPE_HEADER: header},
                message_id=sealed.jti,
                message_type=sealed.typ,
            )
        answers.append((caught.value.reason, caught.value.detail))
    assert answers[0] == answers[1]
