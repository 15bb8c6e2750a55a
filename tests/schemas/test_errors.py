"""One exception root: every concern's error is a ``SealflowError`` with a reason and one line."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from audit import AuditLogError
from broker import BrokerError
from broker.envelope import EnvelopeError, Reason
from broker.policy import PolicyError
from gateway.errors import GatewayError, NotFound
from identity.errors import IdentityError, InvalidGrant
from keys import KeyFileError, KeyMaterialError, TokenError
from parser import ParseError
from schemas import MAX_DETAIL_CHARS, SchemaError, SealflowError, UnknownMessageType
from store import JobNotFound, StoreError


@pytest.mark.parametrize(
    "error_class",
    [
        AuditLogError,
        BrokerError,
        EnvelopeError,
        GatewayError,
        IdentityError,
        KeyMaterialError,
        ParseError,
        PolicyError,
        SchemaError,
        StoreError,
        TokenError,
    ],
)
def test_every_concern_root_is_a_sealflow_error(error_class: type[Exception]) -> None:
    """Each package keeps its own class, and an entry point catches them all as one."""
    assert issubclass(error_class, SealflowError)


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (AuditLogError("log\nbroken", reason="chain_broken", seq=3), "chain_broken"),
        (BrokerError("down\n  now"), "broker_error"),
        (EnvelopeError(Reason.REPLAY, "seen\tbefore"), "replay"),
        (NotFound("no\nsuch job"), "not_found"),
        (InvalidGrant("code\nspent"), "invalid_grant"),
        (KeyMaterialError("weak_key", "too\nshort"), "weak_key"),
        (ParseError("timeout", "took\n20 s"), "timeout"),
        (UnknownMessageType("no\nschema"), "unknown_type"),
        (JobNotFound("no\njob"), "job_not_found"),
        (TokenError("expired", "token\nexpired"), "expired"),
    ],
)
def test_reason_and_detail_are_carried_once(error: SealflowError, reason: str) -> None:
    """The reason code and a one-line detail are the root's, whatever the subclass's arguments."""
    assert error.reason == reason
    assert "\n" not in error.detail
    assert "\t" not in error.detail
    assert error.detail in str(error)


def test_detail_is_bounded() -> None:
    """A detail that quotes untrusted input cannot grow a log line or an audit record unbounded."""
    error = StoreError("x" * (MAX_DETAIL_CHARS * 3))
    assert len(error.detail) == MAX_DETAIL_CHARS
    assert len(NotFound("y" * 5000).detail) == NotFound.max_detail_chars


def test_key_file_error_names_its_path() -> None:
    """A key file's error starts with the path, so the operator knows which file to fix."""
    error = KeyFileError(Path("/k/gateway/ring.json"), "file_missing", "does not exist")
    assert str(error) == "/k/gateway/ring.json: does not exist"
    assert error.reason == "file_missing"


def test_parse_error_survives_the_process_boundary() -> None:
    """The parse process pickles its error back to the daemon: reason and detail survive."""
    copy = pickle.loads(pickle.dumps(ParseError("malformed", "bad xref")))
    assert isinstance(copy, ParseError)
    assert (copy.reason, copy.detail) == ("malformed", "bad xref")


def test_the_gateways_issuer_and_sign_in_errors_are_sealflow_errors() -> None:
    """Entry points catch one root: the relying party's errors are under it too."""
    from gateway.issuer import IssuerError
    from gateway.web.oidc import OidcError

    for cls in (IssuerError, OidcError):
        error = cls("unreachable", "the issuer did not answer\nin time")
        assert isinstance(error, SealflowError)
        assert error.reason == "unreachable"
        assert error.detail == "the issuer did not answer in time"
