"""End to end: sustained jobs/s with sealed envelopes against the same pipeline unsealed, daemon
RSS and replay-cache size, and each daemon's recovery after a broker restart.

Each round is a soak run without faults (``bench/soak.py``): a fresh namespace, the worker,
parser and audit daemons as processes, jobs in six formats submitted by the publish path of
``sealflow submit`` with ``--in-flight`` jobs at most outstanding, timed from the first submit
to the last final event at the gateway queue. Sealed rounds run the production daemons;
unsealed rounds run them through ``bench/unsealed.py`` (no signing, no verifying, no digest,
no replay cache). Each round also runs the bare job flow of ``bench/bare.py`` (aio-pika alone,
same hops, queues, confirms and publishes per job; no envelopes, no storage), the anchor of
the "end to end" ratio. Rounds alternate so that the shared machine's drift hits all alike.

    .venv/bin/python bench/e2e.py --jobs 1500 --rounds 2 [--broker-restart]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import statistics
import tempfile
from pathlib import Path

import structlog
from bare import run_bare_flow
from soak import SoakConfig, SoakReport, run_soak


async def _round(amqp_url: str, config: SoakConfig) -> SoakReport:
    with tempfile.TemporaryDirectory(prefix="sealflow-e2e-") as tmp:
        return await run_soak(
            config,
            amqp_url=amqp_url,
            namespace=f"bench-e2e-{secrets.token_hex(4)}",
            work_dir=Path(tmp),
        )


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f}"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument(
        "--broker-restart",
        action="store_true",
        help="also run one sealed round with a `rabbitmqctl stop_app`/`start_app` in it",
    )
    parser.add_argument("--restart-jobs", type=int, default=400)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    amqp_url = os.environ.get("SEALFLOW_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")

    rates: dict[str, list[float]] = {"sealed": [], "unsealed": [], "bare": []}
    reports: dict[str, list[SoakReport]] = {"sealed": [], "unsealed": []}
    for n in range(args.rounds):
        order = ("sealed", "unsealed") if n % 2 == 0 else ("unsealed", "sealed")
        for mode in order:
            config = SoakConfig(
                jobs=args.jobs,
                seed=100 + n,
                forgeries=0,
                kills=0,
                in_flight=args.in_flight,
                unsealed=mode == "unsealed",
                rss_every=max(1, min(1000, args.jobs // 3)),
            )
            report = await _round(amqp_url, config)
            if not report.ok:
                print("\n".join(report.lines()))
                raise SystemExit(f"{mode} round {n} failed")
            rates[mode].append(report.jobs_per_second)
            reports[mode].append(report)
            print(
                f"round {n} {mode:>8}: {report.jobs_per_second:6.1f} jobs/s "
                f"({report.jobs} jobs in {report.elapsed_s:.1f} s; load {report.load_before} → "
                f"{report.load_after})",
                flush=True,
            )
        bare = await asyncio.to_thread(run_bare_flow, amqp_url, args.jobs, args.in_flight)
        rates["bare"].append(bare.jobs_per_second)
        print(
            f"round {n} {'bare':>8}: {bare.jobs_per_second:6.1f} jobs/s ({bare.jobs} jobs in "
            f"{bare.elapsed_s:.1f} s; load {bare.load_before} → {bare.load_after})",
            flush=True,
        )
    sealed, unsealed = statistics.median(rates["sealed"]), statistics.median(rates["unsealed"])
    anchor = statistics.median(rates["bare"])
    print(
        f"\nend to end, {args.jobs} jobs per round, {args.in_flight} in flight, "
        f"{args.rounds} rounds each; median jobs/s"
    )
    ratio = sealed / unsealed
    print(
        f"  sealed {sealed:.1f}  unsealed {unsealed:.1f}  ratio {ratio:.0%}  (target ≥ 85 %: "
        f"{'met' if ratio >= 0.85 else 'MISSED'})"
    )
    print(
        f"  sealed {sealed:.1f}  bare job flow {anchor:.1f}  ratio {sealed / anchor:.0%}  "
        f"(target ≥ 50 %: {'met' if sealed >= 0.5 * anchor else 'MISSED'})"
    )
    for mode in ("sealed", "unsealed"):
        last = reports[mode][-1]
        end = last.rss[-1]["daemons"]
        growth = last.rss_growth()
        print(
            f"  RSS after a {mode} round (MiB): "
            + ", ".join(
                f"{s} {_mib(end[s]['rss'])}"
                + (
                    f" ({growth[s][2]:+.1%} since job {last.rss[1]['finished']})"
                    if growth[s]
                    else ""
                )
                for s in ("audit", "parser", "worker")
            )
        )
    print(
        f"  replay journal live entries after a sealed round: {reports['sealed'][-1].replay_journal_entries}"
    )

    if args.broker_restart:
        config = SoakConfig(
            jobs=args.restart_jobs, seed=99, forgeries=0, kills=0, broker_restarts=1
        )
        report = await _round(amqp_url, config)
        print("\nbroker restart during a sealed round:")
        for line in report.lines():
            print("  " + line)


if __name__ == "__main__":
    asyncio.run(main())
