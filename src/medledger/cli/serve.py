"""``medledger serve``: the FHIR R4 gateway (thin: :mod:`medledger.gateway`)."""

from __future__ import annotations

import click

from medledger.cli.support import Session, common, pass_session


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Where to listen (a loopback address unless TLS is put in front).")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535),
              help="The port (0: a free one, printed at start).")
@click.option("--url", "public_url",
              help="The base URL callers use, when it is not http://HOST:PORT (behind a proxy).")
@common
@pass_session
def serve(session: Session, host: str, port: int, public_url: str | None) -> None:
    """Serve FHIR R4 over REST as the --account's institution (Sign-In with Ethereum)."""
    from medledger.gateway.app import make_app
    from medledger.gateway.server import LOOPBACK, Gateway, listen, serve, url_of
    from medledger.ipfs.stores import open_store

    account = session.account()
    chain = session.chain
    sock = listen(host, port)
    if host not in LOOPBACK:
        click.echo(f"notice: listening on {host}, not a loopback address: bearer tokens "
                   "cross the network in clear unless TLS is put in front", err=True)  # fmt: skip
    gateway = Gateway(chain, open_store(session.settings), account, public_url or url_of(sock))
    serve(make_app(gateway), gateway.url, sock)


@click.command("sign-in")
@click.option("--gateway", "url", default="http://127.0.0.1:8080", show_default=True,
              help="The gateway's base URL.")
@click.option("--scope", default="user/*.rs", show_default=True,
              help="SMART scopes asked for (space-separated), cut down to the account's grants.")
@common
@pass_session
def sign_in(session: Session, url: str, scope: str) -> None:
    """Sign in to a MedLedger gateway with the --account's key; print the bearer token."""
    from medledger.gateway.signin import sign_in as ask

    token = ask(url, session.account(), scope)
    session.emit(token, str(token["access_token"]))
