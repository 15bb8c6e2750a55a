"""``sealflow keys …``: key rings, the root-signed trust bundle, rotation, export (DESIGN §6).

Each rotation folds the changed ring into the current trust bundle, signs the next version
with the operator root key, saves it as ``trust.json`` and sends it over ``sealflow.control``,
so daemons on every host take the new public keys without a file being copied.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final, ParamSpec, TypeVar

import click
from pydantic import ValidationError
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from keys import (
    ALGORITHMS,
    DEFAULT_ALGORITHM,
    DEFAULT_REFRESH_INTERVAL,
    ROOT_KEY_FILE,
    ROOT_PUBLIC_FILE,
    TRUST_FILE,
    Algorithm,
    KeyMaterialError,
    KeyRecord,
    KeyRing,
    KeyRingError,
    KeySettings,
    SigningKey,
    TrustBundle,
    TrustStoreError,
    issue_trust_bundle,
    load_root_public,
    load_root_signer,
)
from keys.errors import MISSING_KEYS_ADVICE
from keys.export import export_host
from keys.trustfile import read_trust_file
from schemas import SealflowError, Service
from schemas.services import SERVICES

__all__ = ["keys"]

P = ParamSpec("P")
R = TypeVar("R")

# How long a next key must have been published before `rotate` (auto) switches signing to it:
# receivers re-read trust.json at most once per DEFAULT_REFRESH_INTERVAL, plus a margin.
PUBLISH_WAIT: Final = DEFAULT_REFRESH_INTERVAL + 1.0
_KID_SHOWN: Final = 10
_MIN_KID_PREFIX: Final = 4

# The clock of every command; tests replace it instead of sleeping.
_clock: Callable[[], float] = time.time


class _Failure(click.ClickException):
    """One red line on stderr, exit code 1, no traceback."""

    def show(self, file: IO[Any] | None = None) -> None:
        click.secho(f"error: {self.format_message()}", err=True, fg="red", file=file)


def _reported(command: Callable[P, R]) -> Callable[P, R]:
    """Turn Sealflow and file-system errors into a one-line :class:`_Failure`."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except SealflowError as error:
            raise _Failure(str(error)) from error
        except OSError as error:
            where = f"{error.filename}: " if error.filename else ""
            raise _Failure(f"{where}{error.strerror or error}") from error

    return wrapper


def _settings() -> KeySettings:
    try:
        return KeySettings()
    except ValidationError as error:
        first = error.errors()[0]
        name = "SEALFLOW_" + ".".join(str(part) for part in first["loc"]).upper()
        raise _Failure(f"invalid setting {name}: {first['msg']}") from error


def _keys_dir_option(command: Callable[P, R]) -> Callable[P, R]:
    return click.option(
        "--keys-dir",
        type=click.Path(path_type=Path, file_okay=False),
        default=lambda: _settings().keys_dir,
        show_default="$SEALFLOW_KEYS_DIR or ./var/keys",
        help="Directory holding one key ring per service, root.jwk and trust.json.",
    )(command)


def _root_key_option(command: Callable[P, R]) -> Callable[P, R]:
    return click.option(
        "--root-key",
        type=click.Path(path_type=Path, dir_okay=False),
        envvar="SEALFLOW_ROOT_KEY_FILE",
        default=None,
        show_default=f"$SEALFLOW_ROOT_KEY_FILE or KEYS_DIR/{ROOT_KEY_FILE}",
        help="The operator root private key that signs trust bundles (may live off the servers).",
    )(command)


def _publish_option(command: Callable[P, R]) -> Callable[P, R]:
    return click.option(
        "--publish/--no-publish",
        default=True,
        show_default=True,
        help="Send the new trust bundle over sealflow.control (SEALFLOW_AMQP_URL) to every host.",
    )(command)


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M")


def _short(kid: str) -> str:
    return kid if len(kid) <= _KID_SHOWN else kid[:_KID_SHOWN] + "…"


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True)


def _say(console: Console, message: str, style: str | None = None) -> None:
    console.print(Text(message, style=style or ""))


def _require_keys_dir(keys_dir: Path) -> None:
    if not keys_dir.is_dir():
        raise KeyRingError(
            "keys_dir_missing", f"no key rings under {keys_dir.resolve()} {MISSING_KEYS_ADVICE}"
        )


def _existing_rings(keys_dir: Path) -> dict[str, KeyRing]:
    return {
        service: KeyRing.load(keys_dir, service)
        for service in SERVICES
        if KeyRing.exists(keys_dir, service)
    }


@dataclass(frozen=True, slots=True)
class _TrustStatus:
    """Whether the trust bundle holds exactly the keys this host's rings make accepted now."""

    path: Path
    exists: bool
    in_sync: bool
    detail: str
    version: int | None = None


def _accepted(keys: Iterable[Any]) -> set[tuple[str, str, str, str, float | None]]:
    return {(key.service, key.kid, key.alg, key.state, key.not_after) for key in keys}


def _trust_status(keys_dir: Path, rings: dict[str, KeyRing], now: float) -> _TrustStatus:
    path = keys_dir / TRUST_FILE
    try:
        bundle, _ = read_trust_file(path)
    except TrustStoreError as error:
        missing = error.reason in {"trust_store_missing", "root_missing"}
        return _TrustStatus(path, not missing, False, "missing" if missing else str(error))
    except KeyMaterialError as error:
        return _TrustStatus(path, True, False, str(error))
    expected = _accepted(key for ring in rings.values() for key in ring.verification_keys(now))
    held = _accepted(key for key in bundle.store.verification_keys(now) if key.service in rings)
    in_sync = set(rings) <= bundle.store.services and held == expected
    detail = (
        f"bundle {bundle.version}, in sync with the rings"
        if in_sync
        else f"bundle {bundle.version}, out of date"
    )
    return _TrustStatus(path, True, in_sync, detail, bundle.version)


def _bundle_services(keys_dir: Path) -> frozenset[str]:
    """The services the trust bundle here names (none when it cannot be read)."""
    try:
        return read_trust_file(keys_dir / TRUST_FILE)[0].store.services
    except KeyMaterialError:
        return frozenset()


def _check_root_key(keys_dir: Path, root_key: Path | None) -> None:
    """Fail before any ring changes when the root key that must sign the bundle is not here."""
    root = load_root_public(keys_dir / ROOT_PUBLIC_FILE)
    load_root_signer(root_key if root_key is not None else keys_dir / ROOT_KEY_FILE, root)


def _broadcast(console: Console, bundle: TrustBundle, relay: SigningKey, service: Service) -> None:
    """Send ``bundle`` to every daemon; on failure say how to retry (the file is saved)."""
    try:
        _send(console, bundle, relay, service)
    except SealflowError as error:
        _say(
            console,
            f"warning: trust bundle {bundle.version} not sent over sealflow.control ({error}); "
            "daemons on this host read trust.json; run `sealflow keys publish` to reach the "
            "other hosts",
            "yellow",
        )


def _send(console: Console, bundle: TrustBundle, relay: SigningKey, service: Service) -> None:
    from broker import BrokerSettings, broadcast_bundle

    sent = asyncio.run(broadcast_bundle(BrokerSettings(), relay, bundle, service=service))
    _say(console, f"sent trust bundle {bundle.version} over sealflow.control ({sent} copies)")


def _issued(
    console: Console,
    keys_dir: Path,
    *,
    now: float,
    root_key: Path | None,
    publish: bool,
    relay: SigningKey,
    service: Service,
) -> None:
    """Sign the next trust bundle if the rings changed it, save it, and send it."""
    bundle, issued = issue_trust_bundle(keys_dir, now=now, root_key=root_key)
    if not issued:
        _say(console, f"trust bundle {bundle.version} unchanged: {keys_dir / TRUST_FILE}")
        return
    _say(console, f"signed trust bundle {bundle.version}: {keys_dir / TRUST_FILE}")
    if publish:
        _broadcast(console, bundle, relay, service)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def keys() -> None:
    """Manage the services' signing keys, the root key and the trust bundle receivers load."""


@keys.command()
@click.option(
    "--alg",
    type=click.Choice(ALGORITHMS),
    default=DEFAULT_ALGORITHM,
    show_default=True,
    help="Algorithm of the keys created for services that have no ring yet.",
)
@_keys_dir_option
@_root_key_option
@_reported
def init(alg: Algorithm, keys_dir: Path, root_key: Path | None) -> None:
    """Create the root key and a key ring for every service that has none; sign trust.json.

    The first run makes the operator root key (root.pem, root.jwk): daemons pin root.jwk and
    accept only trust bundles it signed. Idempotent: existing rings are left as they are.
    """
    now = _clock()
    console = _console()
    new_root = not (keys_dir / ROOT_PUBLIC_FILE).exists()
    existing = _existing_rings(keys_dir)
    if not new_root and set(SERVICES) - set(existing):
        # A host made by `keys export` pins the root but has no root key: making the other
        # services' rings here would put their private keys on the wrong host.
        _check_root_key(keys_dir, root_key)
    before = _trust_status(keys_dir, existing, now)
    table = Table(title=f"key rings under {keys_dir}")
    for column in ("service", "ring", "kid", "alg"):
        table.add_column(column, no_wrap=True)
    created = 0
    for service in SERVICES:
        ring = existing.get(service)
        status = "exists"
        if ring is None:
            ring = KeyRing.create(keys_dir, service, alg, now=now)
            status = "created"
            created += 1
        active = ring.signing_key()
        table.add_row(Text(service), Text(status), Text(_short(active.kid)), Text(active.alg))
    bundle, issued = issue_trust_bundle(keys_dir, now=now, root_key=root_key)
    path = keys_dir / TRUST_FILE
    console.print(table)
    if new_root:
        _say(
            console,
            f"created the root key {keys_dir / ROOT_KEY_FILE} (keep it safe; it may "
            "live off the servers) and pinned {keys_dir / ROOT_PUBLIC_FILE}",
            "green",
        )
    if created == 0 and before.in_sync and not issued:
        _say(console, f"nothing to do: every service has a key ring and {path} is up to date")
    else:
        _say(
            console,
            f"created {created} key ring(s); signed trust bundle {bundle.version}: {path}",
            "green",
        )


@keys.command()
@click.argument("service", type=click.Choice(SERVICES))
@click.option(
    "--step",
    type=click.Choice(["next", "promote", "auto"]),
    default="auto",
    show_default=True,
    help="next: publish a next key; promote: sign with it and retire the old key; "
    "auto: whichever is due.",
)
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=None,
    help="Seconds the old key stays accepted after promote "
    "[default: SEALFLOW_ENVELOPE_LIFETIME + SEALFLOW_LEEWAY].",
)
@_keys_dir_option
@_root_key_option
@_publish_option
@_reported
def rotate(
    service: Service,
    step: str,
    grace: float | None,
    keys_dir: Path,
    root_key: Path | None,
    publish: bool,
) -> None:
    """Rotate SERVICE's signing key without downtime, one step per run.

    First run: publish a next key (receivers accept it before it signs anything). Second run:
    switch signing to it and retire the old key until every envelope it signed has expired.
    Expired retired keys are pruned. Each change is signed into the next trust bundle with the
    root key, saved as trust.json and sent over sealflow.control to every host.
    """
    now = _clock()
    console = _console()
    _require_keys_dir(keys_dir)
    _check_root_key(keys_dir, root_key)
    grace_seconds = float(_settings().grace_seconds) if grace is None else grace
    ring = KeyRing.load(keys_dir, service)
    relay = ring.signing_key()
    pruned = ring.prune(now)
    pending = next((record for record in ring.records if record.state == "next"), None)
    waited = None if pending is None else now - pending.created_at
    if step == "auto":
        if waited is None:
            step = "next"
        elif waited >= PUBLISH_WAIT:
            step = "promote"
        else:
            step = "wait"
    again = f"`sealflow keys rotate {service}`"
    if step == "next":
        record = ring.add_next(now=now)
        _say(
            console,
            f"published next key {record.kid} ({record.alg}) for {service}; receivers pick it "
            f"up within {DEFAULT_REFRESH_INTERVAL:g} s; run {again} again to switch signing",
            "green",
        )
    elif step == "promote":
        if waited is not None and waited < PUBLISH_WAIT:
            _say(
                console,
                f"warning: the next key was published only {waited:.1f} s ago; receivers that "
                "have not re-read trust.json yet reject what it signs",
                "yellow",
            )
        old = ring.signing_key()
        record = ring.promote_next(grace_seconds=grace_seconds, now=now)
        _say(
            console,
            f"{service} now signs with {record.kid}; retired {old.kid}, accepted until "
            f"{_when(now + grace_seconds)} UTC (grace {grace_seconds:g} s); "
            f"the next run of {again} after that prunes it",
            "green",
        )
    else:
        assert pending is not None
        assert waited is not None
        _say(
            console,
            f"next key {pending.kid} was published {waited:.1f} s ago; receivers pick it up "
            f"within {DEFAULT_REFRESH_INTERVAL:g} s; run {again} again in "
            f"{max(PUBLISH_WAIT - waited, 0.1):.1f} s to switch signing",
            "yellow",
        )
    for kid in pruned:
        _say(console, f"pruned expired key {kid}")
    _issued(
        console,
        keys_dir,
        now=now,
        root_key=root_key,
        publish=publish,
        relay=relay,
        service=service,
    )


def _resolve_kid(records: Iterable[KeyRecord], service: str, given: str) -> str:
    """The full kid for ``given``: itself, or a unique prefix of one (as ``show`` prints)."""
    prefix = given.rstrip("…")
    kids = [record.kid for record in records]
    if given in kids:
        return given
    matches = (
        [kid for kid in kids if kid.startswith(prefix)] if len(prefix) >= _MIN_KID_PREFIX else []
    )
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise KeyRingError("ambiguous_kid", f"{given!r} matches several keys of {service}")
    raise KeyRingError("unknown_kid", f"{service} has no key {given!r}")


@keys.command()
@click.argument("service", type=click.Choice(SERVICES))
@click.argument("kid")
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Seconds the key stays accepted (0: refused from now on).",
)
@_keys_dir_option
@_root_key_option
@_publish_option
@_reported
def retire(
    service: Service,
    kid: str,
    grace: float,
    keys_dir: Path,
    root_key: Path | None,
    publish: bool,
) -> None:
    """Retire SERVICE's key KID (a full kid or a unique prefix), e.g. after a compromise.

    Retiring the active key needs a next key, which then signs in its place. Put `--` before
    SERVICE when KID starts with "-".
    """
    now = _clock()
    console = _console()
    _require_keys_dir(keys_dir)
    _check_root_key(keys_dir, root_key)
    ring = KeyRing.load(keys_dir, service)
    full = _resolve_kid(ring.records, service, kid)
    relay = ring.signing_key()
    signer = relay.kid
    record = ring.retire(full, grace_seconds=grace, now=now)
    until = "refused from now on" if grace == 0 else f"accepted until {_when(record.not_after)} UTC"
    _say(console, f"retired {record.kid} of {service}: {until}", "green")
    if ring.signing_key().kid != signer:
        _say(console, f"{service} now signs with {ring.signing_key().kid} (its next key)")
    _issued(
        console,
        keys_dir,
        now=now,
        root_key=root_key,
        publish=publish,
        relay=relay,
        service=service,
    )


@keys.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON with full kids.")
@_keys_dir_option
@_reported
def show(as_json: bool, keys_dir: Path) -> None:
    """List every service's keys and say whether trust.json matches the rings."""
    now = _clock()
    _require_keys_dir(keys_dir)
    rings = _existing_rings(keys_dir)
    if not rings:
        raise KeyRingError(
            "keys_dir_missing", f"no key rings under {keys_dir.resolve()} {MISSING_KEYS_ADVICE}"
        )
    missing = [service for service in SERVICES if service not in rings]
    status = _trust_status(keys_dir, rings, now)
    rows = [(service, record) for service, ring in rings.items() for record in ring.records]
    if as_json:
        document = {
            "keys_dir": str(keys_dir),
            "keys": [
                {
                    "service": service,
                    "kid": record.kid,
                    "alg": record.alg,
                    "state": record.state,
                    "created_at": record.created_at,
                    "activated_at": record.activated_at,
                    "retired_at": record.retired_at,
                    "not_after": record.not_after,
                    "accepted": record.not_after is None or now < record.not_after,
                }
                for service, record in rows
            ],
            "missing_services": missing,
            "trust_store": {
                "path": str(status.path),
                "exists": status.exists,
                "in_sync": status.in_sync,
                "detail": status.detail,
                "bundle_version": status.version,
            },
        }
        click.echo(json.dumps(document, indent=2))
        return
    console = _console()
    table = Table(title=f"key rings under {keys_dir}", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("service", "kid", "alg", "state", "created (UTC)", "not after (UTC)"):
        table.add_column(column, no_wrap=True)
    for service, record in rows:
        # A retired key past its not_after is no longer accepted; the next rotate prunes it.
        expired = record.not_after is not None and record.not_after <= now
        state = "expired" if expired else record.state
        table.add_row(
            Text(service),
            Text(_short(record.kid)),
            Text(record.alg),
            Text(state),
            Text(_when(record.created_at)),
            Text(_when(record.not_after)),
        )
    console.print(table)
    remote = set(_bundle_services(keys_dir))
    for service in missing:
        if service in remote:
            _say(console, f"{service}: ring on another host; its public keys are in the bundle")
        else:
            _say(console, f"{service}: no key ring (run `sealflow keys init`)", "yellow")
    if status.in_sync:
        _say(console, f"trust store {status.path}: {status.detail}", "green")
    else:
        _say(
            console,
            f"trust store {status.path}: {status.detail} (run `sealflow keys init` to rewrite it)",
            "yellow",
        )


@keys.command()
@click.argument("service", type=click.Choice(SERVICES))
@_keys_dir_option
@_reported
def jwks(service: str, keys_dir: Path) -> None:
    """Print SERVICE's public JWKS (the keys receivers accept now) as JSON."""
    _require_keys_dir(keys_dir)
    click.echo(json.dumps(KeyRing.load(keys_dir, service).jwks(_clock()), indent=2))


@keys.command(name="export")
@click.argument("services", nargs=-1, required=True, type=click.Choice(SERVICES))
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@_keys_dir_option
@_reported
def export(services: tuple[str, ...], directory: Path, keys_dir: Path) -> None:
    """Write into DIRECTORY exactly what a host running SERVICES needs, to use as its keys dir.

    That is each service's key ring, the pinned root public key (root.jwk) and the current
    trust bundle (trust.json): no other service's private key and never the root private key.
    DIRECTORY must be empty or absent. Later rotations reach the host over sealflow.control.
    """
    console = _console()
    written = export_host(keys_dir, services, directory)
    for path in written:
        _say(console, str(path))
    _say(
        console,
        f"exported {', '.join(services)} to {directory}: copy it to the host and point "
        "SEALFLOW_KEYS_DIR at it",
        "green",
    )


@keys.command()
@click.option(
    "--via",
    type=click.Choice(SERVICES),
    default=None,
    help="Which local service's key seals the message [default: the first ring on this host].",
)
@_keys_dir_option
@_reported
def publish(via: Service | None, keys_dir: Path) -> None:
    """Send this host's trust bundle over sealflow.control again (e.g. after a broker outage).

    Daemons that already hold it or a newer one ignore it.
    """
    console = _console()
    _require_keys_dir(keys_dir)
    bundle, _ = read_trust_file(keys_dir / TRUST_FILE)
    local = [service for service in SERVICES if KeyRing.exists(keys_dir, service)]
    relay_service = via if via is not None else next(iter(local), None)
    if relay_service is None:
        raise KeyRingError(
            "keys_dir_missing", f"no key ring under {keys_dir} to seal the message with"
        )
    relay = KeyRing.load(keys_dir, relay_service).signing_key()
    _send(console, bundle, relay, relay_service)
