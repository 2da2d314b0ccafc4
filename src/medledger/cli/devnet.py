"""``medledger devnet ...``, ``medledger accounts`` and ``medledger deploy``: the local chain,
its funded accounts and the contracts on a chain."""

from __future__ import annotations

import click

from medledger.cli.support import ADDRESS, Session, common, pass_session


@click.group("devnet")
def devnet() -> None:
    """Start, stop and inspect the local Anvil devnet (state kept on disk)."""


@devnet.command("start")
@common
@pass_session
def devnet_start(session: Session) -> None:
    """Start the devnet (a no-op when it runs already)."""
    from medledger.chain import devnet as local

    session.settings.writable(session.settings.devnet_dir)  # one line, not a traceback
    info = local.start(session.settings)
    session.emit(
        {"url": info.url, "pid": info.pid}, f"devnet running at {info.url} (pid {info.pid})"
    )


@devnet.command("stop")
@common
@pass_session
def devnet_stop(session: Session) -> None:
    """Stop the devnet, writing its state to disk."""
    from medledger.chain import devnet as local

    stopped = local.stop(session.settings)
    session.emit({"stopped": stopped}, "devnet stopped" if stopped else "devnet was not running")


@devnet.command("status")
@common
@pass_session
def devnet_status(session: Session) -> None:
    """Say whether the devnet runs, where, and at which block."""
    from dataclasses import asdict

    from medledger.chain import devnet as local

    state = local.status(session.settings)
    text = (
        f"devnet running at {state.url} (pid {state.pid}), block {state.block}"
        if state.running
        else "devnet not running"
    ) + (
        f"; snapshot {state.state_file} ({state.state_bytes or 0} bytes), "
        f"{state.unsnapshotted} later transaction(s) held in the outbox"
    )
    session.emit(asdict(state), text)


@click.command("accounts")
@common
@pass_session
def accounts_list(session: Session) -> None:
    """List the devnet's funded test accounts (dev:0 ... dev:19)."""
    from medledger.accounts import DEV_ACCOUNT_COUNT, dev_account

    rows = [
        {"account": f"dev:{i}", "address": dev_account(i).address} for i in range(DEV_ACCOUNT_COUNT)
    ]
    session.emit(rows, "\n".join(f"{r['account']:7} {r['address']}" for r in rows))


@click.command("deploy")
@click.option(
    "--registrar",
    "registrars",
    multiple=True,
    type=ADDRESS,
    help="A registrar address (repeat for several; default: the deployer).",
)
@click.option(
    "--threshold",
    default=1,
    show_default=True,
    help="Registrar approvals needed to verify an institution.",
)
@click.option(
    "--claims-token",
    metavar="ADDRESS",
    help="The ERC-20 (6 or 18 decimals) claims are paid in; needed on a network that is not a "
    "devnet unless its config.toml entry has claims_token (devnet default: DevStablecoin).",
)
@common
@pass_session
def deploy(
    session: Session, registrars: tuple[str, ...], threshold: int, claims_token: str | None
) -> None:
    """Deploy the contracts (reusing those already deployed on this chain)."""
    from dataclasses import asdict

    from medledger.chain import deployments

    chain = session.chain
    recorded, fresh = deployments.deploy(
        chain, session.account(), list(registrars) or None, threshold, claims_token
    )
    lines = [
        f"{name:18} {entry.address}  {'deployed' if name in fresh else 'reused'}"
        for name, entry in recorded.contracts.items()
    ]
    token = recorded.claims_token
    if token is not None:
        lines.append(f"claims paid in {token.symbol} ({token.address}, {token.decimals} decimals)")
    lines.append(f"written to {deployments.deployment_file(chain)}")
    session.emit(
        {"network": chain.network, "chain_id": chain.chain_id,
         "genesis_hash": chain.genesis_hash, "deployed": fresh,
         "contracts": {n: e.address for n, e in recorded.contracts.items()},
         "claims_token": asdict(token) if token is not None else None,
         "file": str(deployments.deployment_file(chain))},
        "\n".join(lines),
    )  # fmt: skip
