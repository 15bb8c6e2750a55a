"""The ``sealflow`` command: a click group whose sub-commands live in ``commands/``."""

from __future__ import annotations

import importlib

import click

from keys.filemodes import restrict_umask
from sealflow import __version__

# name -> "module:attribute"; imported lazily so that `sealflow --help` stays fast and a
# daemon's heavy imports are paid only by the command that runs it.
_COMMANDS: dict[str, str] = {
    "audit": "sealflow.commands.audit:audit",
    "clients": "sealflow.commands.clients:clients",
    "db": "sealflow.commands.db:db",
    "gateway": "sealflow.commands.gateway:gateway",
    "identity": "sealflow.commands.identity:identity",
    "jobs": "sealflow.commands.jobs:jobs",
    "keys": "sealflow.commands.keys:keys",
    "login": "sealflow.commands.auth:login",
    "logout": "sealflow.commands.auth:logout",
    "parser": "sealflow.commands.daemons:parser",
    "result": "sealflow.commands.jobs:result",
    "revoke": "sealflow.commands.revoke:revoke",
    "schemas": "sealflow.commands.schemas:schemas",
    "submit": "sealflow.commands.submit:submit",
    "token": "sealflow.commands.auth:token",
    "up": "sealflow.commands.up:up",
    "users": "sealflow.commands.users:users",
    "upload": "sealflow.commands.jobs:upload",
    "worker": "sealflow.commands.daemons:worker",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _COMMANDS.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module_name, attribute = target.split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        return command


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sealflow")
def cli() -> None:
    """Sealflow: a document-job pipeline in which every message is a signed envelope."""


def main() -> None:
    """Run the command line (the ``sealflow`` console script and ``python -m sealflow``).

    Everything a command or daemon writes (keys, documents, results, journals, the audit log)
    is private to this user, whatever umask the shell had.
    """
    restrict_umask()
    cli()
