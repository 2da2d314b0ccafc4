"""Network profiles: what a named public testnet, L2 or devnet is, so that config.toml names it
(``[networks.sepolia] profile = "sepolia"``) instead of writing every key.

A profile fills four keys of a ``[networks.NAME]`` entry; a key written in the entry wins:

- ``chain_id``: checked against the node's ``eth_chainId`` before any transaction is signed
  (a URL that reaches another chain is one line, and nothing is sent);
- ``confirmations``: blocks a transaction must be under before a write is reported;
- ``fee_market``: ``"eip1559"`` (type-2 transactions) or ``"legacy"`` (type 0, EIP-155, priced
  by ``eth_gasPrice``); absent, it is read from the latest block (a ``baseFeePerGas`` means
  EIP-1559);
- ``log_block_range``: the most blocks one ``eth_getLogs`` request spans (the event index's
  page size).

Chain ids and block times are the networks' own published figures (sources beside each
profile). Confirmation depths are MedLedger's choice from those block times and each network's
finality, stated beside each: a write waits seconds, not the minutes full finality takes;
write ``confirmations = N`` to wait longer. The log range is 2,000 blocks for every public
network, the span Alchemy documents for an ``eth_getLogs`` request of unlimited results
(https://docs.alchemy.com/reference/eth-getlogs); Infura caps a reply at 10,000 results
(https://docs.metamask.io/services/reference/ethereum/json-rpc-methods/eth_getlogs/).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FeeMarket = Literal["eip1559", "legacy"]
FEE_MARKETS: tuple[FeeMarket, ...] = ("eip1559", "legacy")
#: ``log_block_range`` of a network that names no profile and no range.
DEFAULT_LOG_BLOCK_RANGE = 2_000
PUBLIC_LOG_BLOCK_RANGE = 2_000


@dataclass(frozen=True)
class Profile:
    """What a profile fills in a ``[networks.NAME]`` entry (``None``: nothing)."""

    name: str
    chain_id: int | None
    confirmations: int
    fee_market: FeeMarket | None
    log_block_range: int


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        # Ethereum testnets: 12 s slots, finalised after two epochs (64 slots, about 13 min);
        # 3 blocks (36 s) outlast the one- and two-block reorgs proof of stake still sees.
        # Chain ids: https://ethereum.org/en/developers/docs/networks/ and
        # https://github.com/eth-clients/hoodi (Hoodi replaced Holesky in 2025).
        Profile("sepolia", 11155111, 3, "eip1559", PUBLIC_LOG_BLOCK_RANGE),
        Profile("holesky", 17000, 3, "eip1559", PUBLIC_LOG_BLOCK_RANGE),
        Profile("hoodi", 560048, 3, "eip1559", PUBLIC_LOG_BLOCK_RANGE),
        # OP Stack L2s: a block every 2 s from one sequencer; 10 blocks (20 s).
        # https://docs.base.org/chain/network-information (Base Sepolia 84532),
        # https://docs.optimism.io/superchain/networks (OP Sepolia 11155420).
        Profile("base-sepolia", 84532, 10, "eip1559", PUBLIC_LOG_BLOCK_RANGE),
        Profile("optimism-sepolia", 11155420, 10, "eip1559", PUBLIC_LOG_BLOCK_RANGE),
        # Arbitrum: blocks about every 0.25 s from the sequencer; 20 blocks (about 5 s).
        # https://docs.arbitrum.io/build-decentralized-apps/reference/node-providers (421614).
        Profile("arbitrum-sepolia", 421614, 20, "eip1559", PUBLIC_LOG_BLOCK_RANGE),
        # Polygon PoS: blocks about every 2 s; its history has reorgs of tens of blocks, so
        # 32 blocks (about 64 s). https://docs.polygon.technology/pos/reference/rpc-endpoints/
        # (Amoy 80002).
        Profile("polygon-amoy", 80002, 32, "eip1559", PUBLIC_LOG_BLOCK_RANGE),
        # A development chain reached by URL: Anvil's and Hardhat Network's default chain id
        # (https://book.getfoundry.sh/reference/anvil/,
        # https://hardhat.org/hardhat-network/docs/reference#chainid); the fee market is read
        # from its blocks (either may run a pre-London hardfork); no page limit worth the name.
        Profile("devnet", 31337, 1, None, 100_000),
    )
}


@dataclass(frozen=True)
class NetworkSettings:
    """One ``[networks.NAME]`` entry, its profile applied."""

    name: str
    rpc: str
    confirmations: int = 1
    chain_id: int | None = None
    fee_market: FeeMarket | None = None
    log_block_range: int = DEFAULT_LOG_BLOCK_RANGE
    claims_token: str | None = None
    profile: str | None = None
