"""Gateway uploads with and without bearer authentication, and token validation, in one run.

Two gateways run in this process on loopback, built by the real ``gateway.create_app`` on the
same broker (one namespace), each with its own data directory:

- ``auth``: the production app; every upload carries an access token minted by the identity
  ring (one token per connection, so each is verified once and then served from the cache);
- ``no-auth``: the same app and the same upload handler, but the upload operation is
  re-declared here with ``auth="none"`` and a wrapper that injects a fixed principal. The
  switch exists only in this file (``_no_auth_operations``); production has no such setting.

- ``bare``: the anchor, ``bench/bare.py``'s upload handler: write the file, fsync it and its
  directory, one confirmed publish to a quorum queue; no auth, no job store, no audit.

The load comes from a separate process (aiohttp client, its own event loop): 4 KiB text
files, each different, posted as multipart at 32 and 128 concurrent connections, rounds
alternating between the two gateways. Then token validation alone: µs per
``Authenticator.authenticate`` for never-seen tokens (one signature check each) and for a
cached one, and the bare ``keys.verify_access_token``.

    .venv/bin/python bench/gateway_http.py [--requests 1500] [--rounds 2] [--max-seconds 60]
    SEALFLOW_TEST_AMQP_URL=amqp://… to use another broker (default: the local one)
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import multiprocessing
import os
import secrets
import statistics
import string
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
import structlog
from aiohttp import web

FILE_BYTES = 4096
AUDIENCE = "sealflow-gateway"
WARMUP_PER_CONNECTION = 2


# -- the load client (runs in a child process) ----------------------------------------------


def _document(rng_bytes: bytes) -> bytes:
    """4 KiB of printable text, different per request (the blob store dedups equal ones)."""
    alphabet = (string.ascii_letters + string.digits + "  \n").encode()
    return bytes(alphabet[b % len(alphabet)] for b in rng_bytes)


async def _load(
    url: str, connections: int, total: int, tokens: Sequence[str], max_seconds: float
) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    issued = 0
    deadline = 0.0

    async def worker(session: aiohttp.ClientSession, index: int, count: int, timed: bool) -> None:
        nonlocal issued
        headers = {"Authorization": f"Bearer {tokens[index % len(tokens)]}"} if tokens else {}
        while issued < count and (not timed or time.perf_counter() < deadline):
            issued += 1
            form = aiohttp.FormData()
            form.add_field(
                "file",
                _document(os.urandom(FILE_BYTES)),
                filename=f"doc-{index}-{issued}.txt",
                content_type="text/plain",
            )
            started = time.perf_counter()
            async with session.post(url, data=form, headers=headers) as response:
                await response.read()
                status = response.status
            if timed:
                latencies.append(time.perf_counter() - started)
                statuses[status] += 1

    connector = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        warmup = WARMUP_PER_CONNECTION * connections  # every connection open before timing
        await asyncio.gather(*(worker(session, i, warmup, False) for i in range(connections)))
        issued = 0
        deadline = time.perf_counter() + max_seconds
        started = time.perf_counter()
        await asyncio.gather(*(worker(session, i, total, True) for i in range(connections)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "rps": len(latencies) / elapsed,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "statuses": dict(statuses),
    }


def run_client(
    url: str, connections: int, total: int, tokens: list[str], max_seconds: float
) -> dict[str, Any]:
    """Entry point of the client process."""
    return asyncio.run(_load(url, connections, total, tokens, max_seconds))


# -- the servers ----------------------------------------------------------------------------


def _no_auth_operations() -> list[Any]:
    """The gateway's operations with the upload's authentication replaced by a fixed principal.

    Bench only: the handler is the production one; the guard in front of it is gone.
    """
    from gateway import PRINCIPAL_KEY, Principal, all_operations

    principal = Principal(
        subject="bench-user",
        client_id="bench",
        scopes=("jobs:read", "jobs:write"),
        roles=("user",),
        token_jti="0" * 32,
        expires_at=2**31,
    )
    operations = []
    for op in all_operations():
        if op.operation_id == "uploadJobs":
            handler = op.handler

            async def injected(request: web.Request, _handler: Any = handler) -> Any:
                request[PRINCIPAL_KEY] = principal
                return await _handler(request)

            op = dataclasses.replace(op, auth="none", handler=injected)
        operations.append(op)
    return operations


def _bare_upload_app(amqp_url: str, data_dir: Path) -> web.Application:
    """``bench/bare.py``'s handler (a sibling module: this script runs from bench/)."""
    from bare import bare_upload_app

    return bare_upload_app(amqp_url, data_dir)


async def _site(app: web.Application, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _mint(keys_dir: Path, issuer: str, count: int) -> list[str]:
    from keys import KeyRing, TokenSigner

    key = KeyRing.load(keys_dir, "identity").signing_key()
    signer = TokenSigner(issuer, AUDIENCE, access_lifetime=900)
    return [
        signer.access_token(
            key,
            subject=f"bench-user-{n}",
            client_id="sealflow-cli",
            scope=["jobs:read", "jobs:write"],
            roles=["user"],
        )[0]
        for n in range(count)
    ]


async def _validation(keys_dir: Path, issuer: str, n: int) -> dict[str, float]:
    """µs per validation: cold (a never-seen token each time), cached, and the bare verify."""
    from gateway import Authenticator, IssuerKeys
    from keys import verify_access_token

    issuer_keys = IssuerKeys(issuer)
    try:
        keys = await issuer_keys.keys()
        tokens = _mint(keys_dir, issuer, n)
        auth = Authenticator(issuer_keys, audience=AUDIENCE, max_entries=n + 1)
        started = time.perf_counter()
        for token in tokens:
            await auth.authenticate(token)
        cold = (time.perf_counter() - started) / n
        started = time.perf_counter()
        for _ in range(20 * n):
            await auth.authenticate(tokens[0])
        cached = (time.perf_counter() - started) / (20 * n)
        started = time.perf_counter()
        for token in tokens:
            verify_access_token(token, keys, issuer=issuer, audience=AUDIENCE)
        bare = (time.perf_counter() - started) / n
        crypto = _crypto_verify(tokens, keys)
    finally:
        await issuer_keys.close()
    return {
        "cold_us": cold * 1e6,
        "cached_us": cached * 1e6,
        "bare_verify_us": bare * 1e6,
        "crypto_us": crypto * 1e6,
    }


def _crypto_verify(tokens: Sequence[str], keys: Sequence[Any]) -> float:
    """Seconds per signature check alone (the floor under any JWT library), same tokens."""
    import base64
    import json

    from keys.jose import JWS_ALGORITHMS

    def b64(segment: str) -> bytes:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))

    header = json.loads(b64(tokens[0].split(".")[0]))
    key = next(k for k in keys if k.kid == header["kid"])
    algorithm = JWS_ALGORITHMS[header["alg"]]
    prepared = []
    for token in tokens:
        head, payload, signature = token.split(".")
        prepared.append((f"{head}.{payload}".encode(), b64(signature)))
    started = time.perf_counter()
    for signing_input, signature in prepared:
        if not algorithm.verify(signing_input, key.key, signature):
            raise AssertionError("a freshly minted token does not verify")
    return (time.perf_counter() - started) / len(prepared)


async def main(args: argparse.Namespace) -> None:
    logging.disable(logging.WARNING)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    from broker import BrokerSettings, Topology, connect
    from gateway import GatewaySettings, create_app
    from identity import IdentitySettings
    from identity import create_app as create_identity_app
    from keys import KeyRing, write_trust_store
    from schemas import SERVICES

    amqp_url = os.environ.get("SEALFLOW_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    namespace = f"bench-gw-{secrets.token_hex(4)}"
    with tempfile.TemporaryDirectory(prefix="sealflow-bench-") as tmp:
        root = Path(tmp)
        keys_dir = root / "keys"
        for service in SERVICES:
            KeyRing.create(keys_dir, service)
        write_trust_store(keys_dir)
        issuer_port = _free_port()
        issuer = f"http://127.0.0.1:{issuer_port}"
        identity = create_identity_app(
            IdentitySettings(
                issuer=issuer, data_dir=root / "identity", keys_dir=keys_dir, api_audience=AUDIENCE
            )
        )
        runners = [await _site(identity, issuer_port)]
        ports: dict[str, int] = {}
        try:
            for mode in ("auth", "no-auth"):
                data_dir = root / mode
                data_dir.mkdir()
                settings = GatewaySettings(
                    issuer=issuer, api_audience=AUDIENCE, data_dir=data_dir, keys_dir=keys_dir
                )
                broker = BrokerSettings(
                    amqp_url=amqp_url, namespace=namespace, data_dir=data_dir, keys_dir=keys_dir
                )
                operations = _no_auth_operations() if mode == "no-auth" else None
                app = create_app(settings, broker_settings=broker, operations=operations)
                ports[mode] = _free_port()
                runners.append(await _site(app, ports[mode]))
            (root / "bare").mkdir()
            ports["bare"] = _free_port()
            runners.append(await _site(_bare_upload_app(amqp_url, root / "bare"), ports["bare"]))
            tokens = _mint(keys_dir, issuer, 128)
            results: dict[tuple[int, str], list[dict[str, Any]]] = {}
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
                loop = asyncio.get_running_loop()
                for connections in (32, 128):
                    for round_ in range(args.rounds):
                        order = ("auth", "no-auth", "bare")
                        if round_ % 2:
                            order = order[::-1]
                        for mode in order:
                            url = f"http://127.0.0.1:{ports[mode]}/api/jobs"
                            result = await loop.run_in_executor(
                                pool,
                                run_client,
                                url,
                                connections,
                                args.requests,
                                tokens[:connections] if mode == "auth" else [],
                                args.max_seconds,
                            )
                            results.setdefault((connections, mode), []).append(result)
            validation = await _validation(keys_dir, issuer, args.tokens)
        finally:
            for runner in reversed(runners):
                await runner.cleanup()
            connection = await connect(amqp_url)
            try:
                await Topology(namespace).delete(await connection.channel())
            finally:
                await connection.close()
    _report(results, validation, args)


def _report(
    results: dict[tuple[int, str], list[dict[str, Any]]],
    validation: dict[str, float],
    args: argparse.Namespace,
) -> None:
    print(
        f"\nuploads of {FILE_BYTES} B text files, {args.requests} per run after "
        f"{WARMUP_PER_CONNECTION} warm-up uploads per connection, {args.rounds} round(s) per "
        f"configuration (medians of rounds); load average before: {args.load}\n"
    )
    header = (
        f"{'conns':>5} | {'mode':<7} | {'req/s':>8} | {'p50 ms':>7} | {'p99 ms':>7} | "
        f"{'non-202':>7}"
    )
    print(header)
    print("-" * len(header))
    for connections in (32, 128):
        rps: dict[str, float] = {}
        p99: dict[str, float] = {}
        for mode in ("auth", "no-auth", "bare"):
            runs = results[(connections, mode)]
            rps[mode] = statistics.median(r["rps"] for r in runs)
            p99[mode] = statistics.median(r["p99_ms"] for r in runs)
            bad = sum(n for r in runs for s, n in r["statuses"].items() if int(s) != 202)
            print(
                f"{connections:>5} | {mode:<7} | {rps[mode]:>8.0f} | "
                f"{statistics.median(r['p50_ms'] for r in runs):>7.1f} | "
                f"{statistics.median(r['p99_ms'] for r in runs):>7.1f} | {bad:>7}"
            )
        print(
            f"{connections:>5} | ratio   | {100 * rps['auth'] / rps['no-auth']:>7.1f}% | auth / no-auth"
        )
        to_bare = rps["auth"] / rps["bare"]
        p99_ratio = p99["auth"] / p99["bare"]
        print(
            f"{connections:>5} | ratio   | {100 * to_bare:>7.1f}% | auth / bare handler "
            f"(target ≥ 70 %: {'met' if to_bare >= 0.7 else 'MISSED'}); p99 {p99_ratio:.1f}× "
            f"the handler's (target ≤ 2×: {'met' if p99_ratio <= 2 else 'MISSED'})"
        )
    print(
        f"\ntoken validation, µs per token ({args.tokens} tokens, ES256):\n"
        f"  Authenticator.authenticate, never-seen token  {validation['cold_us']:8.1f}\n"
        f"  keys.verify_access_token (keys.jose decode)  {validation['bare_verify_us']:8.1f}\n"
        f"  signature check alone (cryptography)          {validation['crypto_us']:8.1f}\n"
        f"  Authenticator.authenticate, cached token      {validation['cached_us']:8.2f}"
    )


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1500, help="timed uploads per run")
    parser.add_argument("--rounds", type=int, default=2, help="runs per configuration")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="cap of one run")
    parser.add_argument("--tokens", type=int, default=2000, help="tokens for the validation bench")
    args = parser.parse_args()
    args.load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    if not 1 <= args.requests <= 100_000 or not 1 <= args.rounds <= 10:
        parser.error("--requests must be 1..100000 and --rounds 1..10")
    if not 0 < args.max_seconds <= 600 or not 1 <= args.tokens <= 100_000:
        parser.error("--max-seconds must be in (0, 600] and --tokens 1..100000")
    return args


if __name__ == "__main__":
    asyncio.run(main(_parse()))
