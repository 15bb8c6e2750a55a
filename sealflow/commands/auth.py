"""``sealflow login``, ``logout`` and ``token``: sign the command line in and out (DESIGN §2).

``login`` runs the OAuth device flow (RFC 8628) against ``SEALFLOW_ISSUER`` and caches the
tokens privately; ``token`` prints a fresh access token for scripts; ``logout`` revokes the
refresh token and deletes the cache.
"""

from __future__ import annotations

import webbrowser

import click

from sealflow.client import DeviceAuthorization, TokenSet
from sealflow.commands._client import ClientContext, run_client

__all__ = ["login", "logout", "token"]


def _show(authorization: DeviceAuthorization, *, browser: bool) -> None:
    click.echo(f"To sign in, open {authorization.verification_uri}")
    click.echo(f"and enter the code: {authorization.user_code}")
    complete = authorization.verification_uri_complete
    if complete is not None:
        click.echo(f"(or open {complete})")
    minutes = max(1, authorization.expires_in // 60)
    click.echo(f"Waiting for approval; the code expires in about {minutes} min…")
    if browser and not webbrowser.open(complete or authorization.verification_uri):
        click.echo("(no browser could be opened; open the address above yourself)")


@click.command()
@click.option(
    "--no-browser/--browser",
    "no_browser",
    default=True,
    show_default=True,
    help="Only print the address to open (default), or also open it in a local browser.",
)
def login(no_browser: bool) -> None:
    """Sign in with the device flow and cache the tokens.

    Prints an address and a code; approve the code there (on any device), and the tokens are
    kept in tokens.json in your config directory (mode 0600). Uses SEALFLOW_ISSUER and
    SEALFLOW_CLIENT_ID (default sealflow-cli).
    """

    async def main(context: ClientContext) -> TokenSet:
        return await context.auth.login(lambda auth: _show(auth, browser=not no_browser))

    tokens = run_client(main)
    who = f" as {tokens.subject}" if tokens.subject else ""
    click.echo(f"Signed in{who} at {tokens.issuer}; scopes: {tokens.scope or '(none)'}")


@click.command()
@click.option(
    "--forget",
    is_flag=True,
    help="Only delete the local tokens, without revoking them (when the provider is gone).",
)
def logout(forget: bool) -> None:
    """Sign out: revoke the refresh token at the identity provider, then delete the cache."""

    async def main(context: ClientContext) -> bool:
        if forget:
            return context.auth.forget()
        return await context.auth.logout()

    if run_client(main):
        click.echo("Signed out; local tokens deleted.")
    else:
        click.echo("Not signed in.")


@click.command()
def token() -> None:
    """Print a fresh access token, and nothing else, for scripts.

    \b
    Example:
      curl -H "Authorization: Bearer $(sealflow token)" "$SEALFLOW_GATEWAY_URL/api/jobs"

    Refreshes the cached sign-in when needed; with SEALFLOW_CLIENT_SECRET set it uses the
    client-credentials grant instead of the cache.
    """

    async def main(context: ClientContext) -> str:
        return await context.auth.access_token()

    click.echo(run_client(main))
