"""The sender → receiver policy: which service may send which message type, with which scope.

The policy is data (a TOML file, with ``policy.toml`` beside this module as the default for the
standard flow), loaded once at start and consulted by the receiver for every envelope.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from schemas import SERVICES, SealflowError

__all__ = ["Policy", "PolicyError", "PolicyRule"]

_MAX_POLICY_BYTES = 256 * 1024


class PolicyError(SealflowError):
    """The policy file is missing, malformed or names something unknown."""

    reason = "policy_invalid"


@dataclass(frozen=True, slots=True)
class PolicyRule:
    """One permission: ``sender`` may send ``types`` to ``receiver`` carrying ``scopes``."""

    sender: str
    receiver: str
    types: tuple[str, ...]
    scopes: frozenset[str]


class Policy:
    """An immutable, pre-indexed set of rules; lookups are a dict access on the hot path."""

    def __init__(self, rules: Iterable[PolicyRule]) -> None:
        self.rules: tuple[PolicyRule, ...] = tuple(rules)
        self._exact: dict[tuple[str, str, str], frozenset[str]] = {}
        self._prefixes: list[tuple[str, str, str, frozenset[str]]] = []
        for rule in self.rules:
            for message_type in rule.types:
                if message_type.endswith(".*"):
                    prefix = message_type[:-1]
                    self._prefixes.append((rule.sender, rule.receiver, prefix, rule.scopes))
                else:
                    key = (rule.sender, rule.receiver, message_type)
                    self._exact[key] = self._exact.get(key, frozenset()) | rule.scopes

    @classmethod
    def default(cls) -> Policy:
        """The built-in policy for the standard flow (``broker/policy.toml``)."""
        text = resources.files("broker").joinpath("policy.toml").read_text("utf-8")
        return cls.from_toml(text, source="<built-in policy>")

    @classmethod
    def load(cls, path: Path) -> Policy:
        """Load a policy file; errors name the file and what is wrong with it."""
        try:
            size = path.stat().st_size
            if size > _MAX_POLICY_BYTES:
                raise PolicyError(
                    f"{path}: policy file is {size} bytes (limit {_MAX_POLICY_BYTES})"
                )
            text = path.read_text("utf-8")
        except OSError as exc:
            raise PolicyError(f"{path}: cannot read policy file: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise PolicyError(f"{path}: policy file is not UTF-8") from exc
        return cls.from_toml(text, source=str(path))

    @classmethod
    def from_toml(cls, text: str, *, source: str = "<policy>") -> Policy:
        """Parse the TOML form: an array of ``[[rule]]`` tables."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"{source}: not valid TOML: {exc}") from exc
        unknown = set(data) - {"rule"}
        if unknown:
            raise PolicyError(f"{source}: unknown top-level keys {sorted(unknown)}")
        raw_rules = data.get("rule", [])
        if not isinstance(raw_rules, list):
            raise PolicyError(f"{source}: 'rule' must be an array of tables ([[rule]])")
        rules: list[PolicyRule] = []
        for number, raw in enumerate(raw_rules, start=1):
            rules.extend(_parse_rule(raw, f"{source}: rule {number}"))
        return cls(rules)

    def required_scopes(
        self, sender: str, receiver: str, message_type: str
    ) -> frozenset[str] | None:
        """The scopes a message needs, or ``None`` when the policy does not allow it at all."""
        scopes = self._exact.get((sender, receiver, message_type))
        if scopes is not None:
            return scopes
        for rule_sender, rule_receiver, prefix, rule_scopes in self._prefixes:
            if (
                rule_sender == sender
                and rule_receiver == receiver
                and message_type.startswith(prefix)
            ):
                return rule_scopes
        return None

    def receivers_of(self, sender: str, message_type: str) -> list[str]:
        """Every service ``sender`` may send ``message_type`` to (for fanout messages)."""
        return [r for r in SERVICES if self.required_scopes(sender, r, message_type) is not None]

    def scope_for(self, sender: str, receiver: str, message_type: str) -> str:
        """The ``scope`` claim a sender puts in an envelope it is allowed to send."""
        scopes = self.required_scopes(sender, receiver, message_type)
        if scopes is None:
            raise PolicyError(f"policy does not allow {sender} → {receiver}: {message_type}")
        return " ".join(sorted(scopes))


def _names(value: object, field: str, where: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(i, str) for i in items):
        raise PolicyError(f"{where}: '{field}' must be a string or a non-empty list of strings")
    return tuple(str(i) for i in items)


def _parse_rule(raw: object, where: str) -> list[PolicyRule]:
    if not isinstance(raw, Mapping):
        raise PolicyError(f"{where}: must be a table")
    unknown = set(raw) - {"sender", "receiver", "types", "scopes"}
    missing = {"sender", "receiver", "types", "scopes"} - set(raw)
    if unknown or missing:
        raise PolicyError(
            f"{where}: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}"
        )
    senders = _names(raw["sender"], "sender", where)
    receivers = _names(raw["receiver"], "receiver", where)
    for service in (*senders, *receivers):
        if service not in SERVICES:
            raise PolicyError(
                f"{where}: unknown service {service!r} (known: {', '.join(SERVICES)})"
            )
    types = _names(raw["types"], "types", where)
    for message_type in types:
        body = message_type[:-2] if message_type.endswith(".*") else message_type
        if not body or "*" in body:
            raise PolicyError(f"{where}: bad message type pattern {message_type!r}")
    scopes = frozenset(_names(raw["scopes"], "scopes", where))
    return [
        PolicyRule(sender=s, receiver=r, types=types, scopes=scopes)
        for s in senders
        for r in receivers
    ]
