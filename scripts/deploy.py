"""`ape run deploy`: deploy the MedLedger contracts with the medledger package.

A thin layer over `medledger.chain.deployments.deploy`, the same function `medledger deploy` calls.
Ape picks the account (`--account ALIAS` or the devnet's first test account) and the network's
RPC URL; the deployment is written to deployments/<chain id>-<genesis hash>.json (the same file
`medledger deploy` finds for that chain, however it is reached).
"""

from __future__ import annotations

import click
from ape.cli import ConnectedProviderCommand, account_option, network_option


@click.command(cls=ConnectedProviderCommand)
@network_option()
@account_option()
@click.option("--threshold", default=1, show_default=True, help="Registrar approvals needed.")
@click.option(
    "--claims-token", default=None, help="The ERC-20 claims are paid in (6 or 18 decimals)."
)
def cli(ecosystem, network, provider, account, threshold, claims_token):  # type: ignore[no-untyped-def]
    """Deploy ProviderRegistry and RecordRegistry (reusing what is deployed)."""
    from eth_account import Account

    from medledger.accounts import load_account
    from medledger.chain import Chain, deployments
    from medledger.config import load_settings
    from medledger.errors import MedLedgerError

    uri = getattr(provider, "http_uri", None)
    if not uri:
        raise click.ClickException(
            "choose a network with an RPC URL (for example ethereum:local:foundry)"
        )
    chain = Chain(load_settings(), network=uri)
    chain.network = f"{ecosystem.name}-{network.name}-{provider.name}"  # named in the file
    try:
        # Test accounts expose their key; keyfile accounts are unlocked the way `medledger` does.
        key = getattr(account, "private_key", None)
        signer = Account.from_key(key) if key else load_account(account.alias, chain.chain_id)
        recorded, fresh = deployments.deploy(chain, signer, None, threshold, claims_token)
    except MedLedgerError as exc:
        raise click.ClickException(str(exc)) from None
    for name, entry in recorded.contracts.items():
        click.echo(f"{name:18} {entry.address} {'deployed' if name in fresh else 'reused'}")
