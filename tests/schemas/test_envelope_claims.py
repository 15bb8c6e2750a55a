"""EnvelopeClaims: the cross-field checks, the actor chain bound, scopes and dumping."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from schemas import MAX_ACTOR_DEPTH, Actor, EnvelopeClaims

Payload = Callable[[str], dict[str, Any]]


def _chain(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"sub": f"service-{depth}"}
    for level in range(depth - 1, 0, -1):
        node = {"sub": f"service-{level}", "act": node}
    return node


def _claims(payload: Payload, **changes: Any) -> dict[str, Any]:
    return {**payload("envelope.claims"), **changes}


def test_valid_claims_from_a_dict_are_accepted(payload: Payload) -> None:
    claims = EnvelopeClaims.model_validate(_claims(payload))
    assert claims.aud == "parser"
    assert claims.act == Actor(sub="worker", act=Actor(sub="gateway"))


def test_nbf_after_exp_is_rejected(payload: Payload) -> None:
    with pytest.raises(ValidationError, match="nbf and iat"):
        EnvelopeClaims.model_validate(_claims(payload, nbf=1_763_892_301))


def test_iat_after_exp_is_rejected(payload: Payload) -> None:
    with pytest.raises(ValidationError, match="nbf and iat"):
        EnvelopeClaims.model_validate(_claims(payload, iat=1_763_892_301))


def test_nbf_equal_to_exp_is_accepted(payload: Payload) -> None:
    claims = EnvelopeClaims.model_validate(_claims(payload, nbf=1_763_892_300, iat=1_763_892_300))
    assert claims.nbf == claims.exp


def test_actor_chain_of_max_depth_is_accepted(payload: Payload) -> None:
    claims = EnvelopeClaims.model_validate(_claims(payload, act=_chain(MAX_ACTOR_DEPTH)))
    depth, node = 0, claims.act
    while node is not None:
        depth, node = depth + 1, node.act
    assert depth == MAX_ACTOR_DEPTH == 8


def test_actor_chain_deeper_than_max_is_rejected(payload: Payload) -> None:
    with pytest.raises(ValidationError, match="deeper than 8"):
        EnvelopeClaims.model_validate(_claims(payload, act=_chain(MAX_ACTOR_DEPTH + 1)))


def test_actor_chain_too_deep_is_rejected_in_json_mode(payload: Payload) -> None:
    raw = json.dumps(_claims(payload, act=_chain(9)))
    with pytest.raises(ValidationError, match="deeper than 8"):
        EnvelopeClaims.model_validate_json(raw)


def test_very_deep_actor_chain_is_rejected_before_recursing(payload: Payload) -> None:
    with pytest.raises(ValidationError) as info:
        EnvelopeClaims.model_validate(_claims(payload, act=_chain(5000)))
    assert info.value.errors()[0]["loc"] == ("act",)


def test_standalone_actor_enforces_depth() -> None:
    with pytest.raises(ValidationError, match="deeper than 8"):
        Actor.model_validate(_chain(9))
    inner = Actor.model_validate(_chain(8))
    with pytest.raises(ValidationError, match="deeper than 8"):
        Actor(sub="one-more", act=inner)


def test_actor_rejects_extra_claims(payload: Payload) -> None:
    with pytest.raises(ValidationError):
        EnvelopeClaims.model_validate(_claims(payload, act={"sub": "worker", "iss": "x"}))


def test_scopes_are_the_space_separated_tokens(payload: Payload) -> None:
    claims = EnvelopeClaims.model_validate(_claims(payload))
    assert claims.scopes == frozenset({"parse:request", "jobs:process"})


def test_absent_optional_claims_are_omitted_from_dumps(payload: Payload) -> None:
    data = _claims(payload, act={"sub": "worker"})
    for key in ("job", "trace"):
        del data[key]
    claims = EnvelopeClaims.model_validate(data)
    assert claims.job is None
    assert claims.trace is None
    dumped = claims.model_dump()
    assert "job" not in dumped
    assert "trace" not in dumped
    assert dumped["act"] == {"sub": "worker"}
    assert json.loads(claims.model_dump_json()) == dumped
    assert claims.model_dump(exclude_none=True) == dumped


def test_present_optional_claims_are_dumped(payload: Payload) -> None:
    dumped = EnvelopeClaims.model_validate(_claims(payload)).model_dump(mode="json")
    assert dumped == payload("envelope.claims")


def test_explicit_null_optional_claim_is_accepted(payload: Payload) -> None:
    claims = EnvelopeClaims.model_validate_json(json.dumps(_claims(payload, job=None)))
    assert claims.job is None


@pytest.mark.parametrize("value", [1.0, "1763892000", True])
def test_numeric_dates_must_be_integers(value: object, payload: Payload) -> None:
    with pytest.raises(ValidationError):
        EnvelopeClaims.model_validate_json(json.dumps(_claims(payload, iat=value)))


def test_claims_are_not_a_registered_message() -> None:
    from schemas import MESSAGE_MODELS

    assert EnvelopeClaims not in MESSAGE_MODELS.values()
    assert "schema_version" not in EnvelopeClaims.model_fields
