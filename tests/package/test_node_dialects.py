"""What differs between the EVM nodes MedLedger runs on, answered the same way by the package.

The node answers below are recorded from Anvil 1.7.1 and Hardhat Network 2.29.1 (EDR); the
end-to-end runs on both are tests/package/test_second_evm.py and the demo test.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from eth_abi.abi import encode

from medledger.chain.client import Chain
from medledger.chain.pipeline import Rpc
from medledger.errors import TransactionRejected, TransactionReverted

REASON = "0x08c379a0" + encode(["string"], ["not yours"]).hex()
PANIC = "0x4e487b71" + encode(["uint256"], [1]).hex()
HARDHAT_VM = "Error: VM Exception while processing transaction: "


HARDHAT_EMPTY = "Error: Transaction reverted without a reason string"
REVERTS = {
    "anvil-reason": ({"code": 3, "message": "execution reverted: not yours", "data": REASON},
                     "Error"),
    "hardhat-reason-nested": ({"code": -32603, "message": HARDHAT_VM + "reverted with reason "
                               "string 'not yours'", "data": {"message": "", "data": REASON}},
                              "Error"),
    "hardhat-panic-nested": ({"code": -32603, "message": HARDHAT_VM + "reverted with panic code "
                              "0x1", "data": {"message": "", "data": PANIC}}, "Panic"),
    "anvil-empty": ({"code": 3, "message": "execution reverted"}, "execution reverted"),
    "hardhat-empty": ({"code": -32603, "message": HARDHAT_EMPTY,
                       "data": {"message": HARDHAT_EMPTY, "data": "0x"}},
                      "Transaction reverted without a reason string"),
}  # fmt: skip


@pytest.mark.parametrize(("error", "expected"), REVERTS.values(), ids=REVERTS.keys())
def test_a_revert_reads_the_same_whichever_node_reports_it(error: dict[str, Any], expected: str):
    refused = Chain._refused("granting access", error)
    assert isinstance(refused, TransactionReverted)
    assert refused.error == expected
    assert "VM Exception" not in str(refused) and "Error: Transaction" not in str(refused)


def test_a_refusal_that_is_no_revert_stays_a_refusal_on_hardhat():
    error = {"code": -32000, "message": "Sender doesn't have enough funds to send tx. The max "
             "upfront cost is: 1 and the sender's balance is: 0."}  # fmt: skip
    refused = Chain._refused("registering", error)
    assert isinstance(refused, TransactionRejected)


class AutominingNode(Rpc):
    """Hardhat Network while it mines a block per transaction, as far as sending goes: a batch's
    requests are handled in random order, and a transaction whose nonce is not the account's
    next one is refused (no queue). Raw transactions here are just their nonces."""

    def __init__(self, seed: int, first: int = 0) -> None:
        super().__init__("http://127.0.0.1:9")
        self.next = first
        self.order: list[int] = []
        self._random = random.Random(seed)

    def batch(self, calls: list[tuple[str, list[Any]]]) -> list[dict[str, Any]]:
        replies: dict[int, dict[str, Any]] = {}
        for index in self._random.sample(range(len(calls)), len(calls)):
            nonce = int(calls[index][1][0])
            if nonce == self.next:
                self.next += 1
                self.order.append(nonce)
                replies[index] = {"result": f"0x{nonce:064x}"}
            else:
                replies[index] = {"error": {"code": -32000, "message": f"Nonce too high. Expected "
                                  f"nonce to be {self.next} but got {nonce}. Note that "
                                  "transactions can't be queued when automining."}}  # fmt: skip
        return [replies[i] for i in range(len(calls))]


@pytest.mark.parametrize("seed", range(5))
def test_a_window_answered_out_of_order_is_taken_whole_and_in_nonce_order(seed: int):
    node = AutominingNode(seed)
    window = [str(n) for n in range(40)]
    replies = node._gaps_sent_again(
        window, node.batch([("eth_sendRawTransaction", [raw]) for raw in window])
    )
    assert all("result" in reply for reply in replies)
    assert node.order == list(range(40))


def test_a_real_nonce_gap_is_still_refused():
    node = AutominingNode(0, first=0)
    window = ["3", "4"]  # nonces 0 to 2 were never sent
    replies = node._gaps_sent_again(
        window, node.batch([("eth_sendRawTransaction", [raw]) for raw in window])
    )
    assert all("Nonce too high" in reply["error"]["message"] for reply in replies)
