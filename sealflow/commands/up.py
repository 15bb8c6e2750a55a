"""``sealflow up``: every daemon on one machine, with prefixed logs, stopped together on Ctrl-C."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
from urllib.parse import urlsplit

import click
from rich.console import Console
from rich.markup import escape

from broker import BrokerSettings, BrokerUnavailable, connect, redact_url
from keys import KeyRing, write_trust_store
from schemas import SERVICES

__all__ = ["up"]

# Every daemon, in start order: the identity before the gateway, which reads its discovery.
DAEMONS: tuple[str, ...] = ("audit", "identity", "parser", "worker", "gateway")
_COLOURS = {
    "audit": "magenta",
    "parser": "cyan",
    "worker": "green",
    "gateway": "blue",
    "identity": "yellow",
}
_console = Console(stderr=True, highlight=False)


async def _broker_answers(url: str) -> bool:
    try:
        connection = await connect(url, timeout=5.0)
    except BrokerUnavailable:
        return False
    await connection.close()
    return True


def _ensure_broker(url: str, start: bool) -> None:
    if asyncio.run(_broker_answers(url)):
        return
    host = urlsplit(url).hostname or ""
    local = host in {"localhost", "127.0.0.1", "::1"}
    server, ctl = shutil.which("rabbitmq-server"), shutil.which("rabbitmqctl")
    if start and local and server and ctl:
        _console.print("[yellow]RabbitMQ is down; starting it with `rabbitmq-server -detached`…[/]")
        subprocess.run([server, "-detached"], check=False, timeout=60)  # noqa: S603 - fixed argv
        subprocess.run([ctl, "await_startup"], check=False, timeout=120)  # noqa: S603 - fixed argv
        if asyncio.run(_broker_answers(url)):
            return
    raise click.ClickException(
        f"RabbitMQ does not answer at {redact_url(url)}. Start it with "
        "`rabbitmq-server -detached` (local service) or `docker compose up -d rabbitmq`, "
        "or set SEALFLOW_AMQP_URL."
    )


def _ensure_web_client() -> None:
    """Register the gateway's browser client (public, PKCE) at the identity if it is missing."""
    from gateway.web import WEB_GRANT_TYPES, WebSettings
    from identity import AnyIdentityStore
    from sealflow.commands.identity_db import run_with_store

    web = WebSettings()
    if web.client_secret is not None:
        return  # a confidential client is registered by hand (`sealflow clients add`)

    async def action(store: AnyIdentityStore) -> tuple[bool, tuple[str, ...]]:
        added = await store.ensure_public_client(
            web.client_id, grant_types=list(WEB_GRANT_TYPES), redirect_uris=[web.redirect_uri]
        )
        client = await store.get_client(web.client_id)
        return added, client.redirect_uris if client is not None else ()

    added, uris = run_with_store(action)
    if added:
        _console.print(f"registered the browser client {web.client_id} ({web.redirect_uri})")
    elif web.redirect_uri not in uris:
        _console.print(
            f"[yellow]the client {web.client_id} does not list {web.redirect_uri}; browser "
            "sign-in will be refused until it does (SEALFLOW_GATEWAY_URL)[/]"
        )


def _ensure_keys(settings: BrokerSettings) -> None:
    for service in SERVICES:
        KeyRing.open_or_create(settings.keys_dir, service)
    write_trust_store(settings.keys_dir)


async def _pump(name: str, stream: asyncio.StreamReader) -> None:
    colour = _COLOURS.get(name, "white")
    label = f"[{colour}]{name:<8}[/] | "
    while line := await stream.readline():
        _console.print(label + escape(line.decode("utf-8", "replace").rstrip()), soft_wrap=True)


async def _run_all(daemons: tuple[str, ...], grace: float) -> int:
    processes: dict[str, asyncio.subprocess.Process] = {}
    pumps: list[asyncio.Task[None]] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    for name in daemons:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "sealflow",
            name,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        processes[name] = process
        assert process.stdout is not None
        pumps.append(asyncio.create_task(_pump(name, process.stdout)))
    _console.print(f"[bold]sealflow up[/]: {', '.join(daemons)} running; Ctrl-C stops them all.")
    waiters = {asyncio.create_task(p.wait()): name for name, p in processes.items()}
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({*waiters, stopper}, return_when=asyncio.FIRST_COMPLETED)
    exit_code = 0
    for task in done:
        if task in waiters:
            name = waiters[task]
            _console.print(
                f"[red]{name} exited with status {task.result()}; stopping the others[/]"
            )
            exit_code = 1
    for process in processes.values():
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
    for name, process in processes.items():
        try:
            await asyncio.wait_for(process.wait(), timeout=grace)
        except TimeoutError:
            _console.print(f"[red]{name} did not stop within {grace:.0f} s; killing it[/]")
            process.kill()
            await process.wait()
    await asyncio.gather(*pumps, return_exceptions=True)
    stopper.cancel()
    _console.print("[bold]sealflow up[/]: stopped.")
    return exit_code


@click.command()
@click.option(
    "--only",
    "only",
    multiple=True,
    type=click.Choice(DAEMONS),
    help="Run just these daemons (repeatable); default: all.",
)
@click.option(
    "--start-broker/--no-start-broker",
    default=True,
    show_default=True,
    help="Start the local RabbitMQ service if it is installed and down.",
)
def up(only: tuple[str, ...], start_broker: bool) -> None:
    """Run the pipeline on this machine: audit, identity, parser, worker and gateway.

    Checks that RabbitMQ answers, creates key rings if there are none, then runs every daemon
    with its log lines prefixed by its name. Ctrl-C stops them all cleanly.
    """
    settings = BrokerSettings()
    _ensure_broker(settings.amqp_url, start_broker)
    _ensure_keys(settings)
    daemons = tuple(d for d in DAEMONS if not only or d in only)
    if "identity" in daemons:
        _ensure_web_client()
    sys.exit(asyncio.run(_run_all(daemons, grace=settings.shutdown_grace + 5)))
