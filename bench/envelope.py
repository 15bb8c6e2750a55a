"""Envelope cost against the bare cryptography it wraps, measured in one run on this machine.

For each algorithm: seal (serialise + digest + claims + sign) against a bare ``cryptography``
sign of the same signing input, and open (every check of DESIGN §4, the replay cache and the
body's schema validation included) against a bare verify of the same bytes. Rounds are
interleaved and the median per-operation time is reported, so that drift on a shared machine
hits both sides alike.

    .venv/bin/python bench/envelope.py [--rounds 7] [--n 2000]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from broker import ENVELOPE_HEADER, Opener, RevocationList, Sealer, SpentIds
from keys import KeyRing, TrustStore
from schemas import JobSubmitted

TARGETS = {"ES256": 1.5, "EdDSA": 2.0, "RS256": 2.0}
SERVICE_FOR_ALG = {"ES256": "gateway", "EdDSA": "identity", "RS256": "parser"}


def _bare(private_key: object) -> tuple[Callable[[bytes], bytes], Callable[[bytes, bytes], None]]:
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        public = private_key.public_key()
        return (
            lambda data: private_key.sign(data, ec.ECDSA(hashes.SHA256())),
            lambda sig, data: public.verify(sig, data, ec.ECDSA(hashes.SHA256())),
        )
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        public_ed = private_key.public_key()
        return private_key.sign, lambda sig, data: public_ed.verify(sig, data)
    assert isinstance(private_key, rsa.RSAPrivateKey)
    public_rsa = private_key.public_key()
    return (
        lambda data: private_key.sign(data, padding.PKCS1v15(), hashes.SHA256()),
        lambda sig, data: public_rsa.verify(sig, data, padding.PKCS1v15(), hashes.SHA256()),
    )


def _per_op(fn: Callable[[], object], n: int) -> float:
    gc.collect()  # garbage left by the harness's previous loop is not this loop's cost
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--n", type=int, default=2000, help="operations per round")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        keys_dir = Path(tmp)
        for alg, service in SERVICE_FOR_ALG.items():
            KeyRing.create(keys_dir, service, alg)  # type: ignore[arg-type]
        KeyRing.create(keys_dir, "worker")
        KeyRing.create(keys_dir, "audit")
        trust = TrustStore.from_rings(keys_dir)
        message = JobSubmitted(
            job_id="0123456789abcdef0123456789abcdef",
            owner="alice@example.com",
            filename="quarterly-report.pdf",
            content_type="application/pdf",
            size=48213,
            blob_sha256="9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            submitted_at=datetime.now(UTC),
        )
        print(f"envelope benchmark: {args.rounds} rounds × {args.n} ops, median per op (µs)")
        print(
            f"{'alg':<6} {'bare sign':>10} {'seal':>8} {'ratio':>6}   {'bare verify':>11} {'open':>8} {'ratio':>6}  target  result"
        )
        all_ok = True
        for alg, service in SERVICE_FOR_ALG.items():
            ring = KeyRing.load(keys_dir, service)
            key = ring.signing_key()
            sealer = Sealer(key)
            if service == "gateway":
                seal_kwargs = {
                    "typ": "job.submitted",
                    "aud": "worker",
                    "sub": "alice@example.com",
                    "job": message.job_id,
                    "act": {"sub": "gateway"},
                    "trace": "4bf92f3577b34da6a3ce929d0e0e4736",
                }
                receiver = "worker"
            else:
                # identity and parser may not send job.submitted; give them a permissive policy.
                from broker import Policy

                policy = Policy.from_toml(
                    f'[[rule]]\nsender = "{service}"\nreceiver = "worker"\ntypes = ["job.submitted"]\nscopes = ["jobs:process"]\n'
                )
                sealer = Sealer(key, policy=policy)
                seal_kwargs = {
                    "typ": "job.submitted",
                    "aud": "worker",
                    "sub": "alice@example.com",
                    "job": message.job_id,
                    "act": {"sub": service},
                    "trace": "4bf92f3577b34da6a3ce929d0e0e4736",
                }
                receiver = "worker"
            policy_for_open = sealer.policy
            bare_sign, bare_verify = _bare(key.private_key)
            sample = sealer.seal(message, **seal_kwargs)  # type: ignore[arg-type]
            signing_input = sample.token.rsplit(".", 1)[0].encode()
            bare_sig = bare_sign(signing_input)

            seal_t, sign_t, open_t, verify_t = [], [], [], []
            for _ in range(args.rounds):
                sign_t.append(_per_op(lambda: bare_sign(signing_input), args.n))
                seal_t.append(_per_op(lambda: sealer.seal(message, **seal_kwargs), args.n))  # type: ignore[arg-type]
                sealed = [sealer.seal(message, **seal_kwargs) for _ in range(args.n)]  # type: ignore[arg-type]
                opener = Opener(
                    receiver,
                    trust,
                    policy=policy_for_open,
                    spent=SpentIds(args.n * 2),
                    revocations=RevocationList(),  # as the daemons run it
                )
                it = iter(sealed)

                def open_one() -> object:
                    s = next(it)
                    return opener.open(
                        s.body, {ENVELOPE_HEADER: s.token}, message_id=s.jti, message_type=s.typ
                    )

                verify_t.append(_per_op(lambda: bare_verify(bare_sig, signing_input), args.n))
                open_t.append(_per_op(open_one, args.n))
            sign_m, seal_m = statistics.median(sign_t) * 1e6, statistics.median(seal_t) * 1e6
            verify_m, open_m = statistics.median(verify_t) * 1e6, statistics.median(open_t) * 1e6
            seal_r, open_r = seal_m / sign_m, open_m / verify_m
            ok = seal_r <= TARGETS[alg] and open_r <= TARGETS[alg]
            all_ok &= ok
            print(
                f"{alg:<6} {sign_m:>10.1f} {seal_m:>8.1f} {seal_r:>5.2f}×   {verify_m:>11.1f} {open_m:>8.1f} {open_r:>5.2f}×"
                f"  ≤{TARGETS[alg]:.1f}×   {'ok' if ok else 'MISSED'}"
            )
        print("all targets met" if all_ok else "some targets missed")


if __name__ == "__main__":
    main()
