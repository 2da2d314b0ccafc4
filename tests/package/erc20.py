"""A test ERC-20 with chosen decimals (``contracts/MockERC20.sol``: OpenZeppelin's ERC20),
compiled once per session by the project's compiler (py-solc-x and the solc-js bridge, with the
settings of the shipped artifacts) and deployed, minted and read through plain JSON-RPC, so the
tests check the package against a token it has never seen rather than its own DevStablecoin."""

from __future__ import annotations

import time
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode

from medledger.addresses import checksum
from medledger.chain.artifacts import SETTINGS
from medledger.keccak import keccak

if TYPE_CHECKING:
    from medledger.chain import Chain

SOURCE = Path(__file__).with_name("contracts") / "MockERC20.sol"
REPO = Path(__file__).resolve().parents[2]


@cache
def bytecode() -> bytes:
    """The MockERC20's creation code (a skip when the compiler is not installed)."""
    try:
        import solcx

        from medledger.toolchain import solc_shim
    except ImportError:
        pytest.skip("py-solc-x is not installed (the dev extras)")
    shim = solc_shim()
    if not shim.is_file():
        pytest.skip("no solc shim: run `python -m medledger.toolchain install`")
    name = "tests/package/contracts/MockERC20.sol"
    output = solcx.compile_standard(
        {"language": "Solidity", "sources": {name: {"content": SOURCE.read_text()}},
         "settings": SETTINGS},
        solc_binary=shim, base_path=str(REPO), allow_paths=[str(REPO)],
    )  # fmt: skip
    return bytes.fromhex(output["contracts"][name]["MockERC20"]["evm"]["bytecode"]["object"])


def _send(chain: Chain, sender: str, to: str | None, data: bytes) -> dict[str, str]:
    """One transaction from an account the node holds (Anvil's are unlocked); its receipt."""
    tx = {"from": sender, "data": "0x" + data.hex(), "gas": hex(3_000_000)}
    if to is not None:
        tx["to"] = to
    sent = chain.request("eth_sendTransaction", [tx])
    receipt = None
    for _ in range(100):  # Anvil mines at once, but may answer the send first
        receipt = chain.request("eth_getTransactionReceipt", [sent])
        if receipt is not None:
            break
        time.sleep(0.02)
    assert receipt is not None and receipt["status"] == "0x1", receipt
    return dict(receipt)


def deploy_token(chain: Chain, sender: str, symbol: str, decimals: int) -> str:
    """Deploy a MockERC20 and return its address."""
    args = abi_encode(["string", "string", "uint8"], [f"Test {symbol}", symbol, decimals])
    receipt = _send(chain, sender, None, bytecode() + args)
    return checksum(receipt["contractAddress"])


def mint(chain: Chain, sender: str, token: str, to: str, units: int) -> None:
    """Mint ``units`` (the token's smallest unit) to ``to``."""
    selector = keccak(b"mint(address,uint256)")[:4]
    _send(chain, sender, token, selector + abi_encode(["address", "uint256"], [to, units]))


def balance(chain: Chain, token: str, holder: str) -> int:
    """``holder``'s balance in the token's smallest unit, read without the package's ABI."""
    data = keccak(b"balanceOf(address)")[:4] + abi_encode(["address"], [holder])
    (units,) = abi_decode(["uint256"], chain.eth_call("reading a balance", token, data))
    return int(units)
