"""Gas of the TrialRegistry's state-changing functions, printed with ``-s``.

Each figure is the receipt's ``gas_used`` (the 21,000 base cost and calldata included, as the
sender pays them). Every figure is checked against a budget about 25% above what was measured
when this file was written, so that a change that makes a hot path much dearer fails here;
a batch costs the same whatever its size (up to calldata), which is checked too, and the
first data of a version pays for freezing its outcomes (one more write), no more.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hexbytes import HexBytes

from ..support import digest
from .helpers import READERS_ALL, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable

    from ape.api import AccountAPI, ReceiptAPI
    from eth_account.signers.local import LocalAccount

    from .conftest import Consented, Study, SubmittedBatch

# The networks agree to the gas except where calldata or eth_estimateGas differ (a few %).
BUDGETS = {
    "TrialRegistry deployment": 5_100_000,  # 18.9 KB of runtime code (the limit is 24 KB)
    "registerStudy (2 sites)": 325_000,
    "setOutcomes": 57_000,
    "addSite": 75_000,
    "setMonitor": 68_000,
    "publishSummary": 40_000,
    "consent: enrolment relayed by the site": 165_000,
    "consent: enrolment relayed by a practitioner": 160_000,
    "amendProtocol (re-consent)": 165_000,
    "consent: re-consent": 90_000,
    "submitData": 85_000,
    "submitDataBatch (10 bodies)": 116_000,
    "submitDataBatch (100 bodies)": 116_000,
    "verifyBatchData (100 bodies, eth_estimateGas)": 51_000,
    "withdraw (by delegate)": 43_000,
    "withdrawWithSignature": 58_000,
    "cancelSignatures": 56_000,  # a first cancellation: the nonce slot goes from zero to one
    "submitData (first data of a version: freezes its outcomes)": 92_000,
}


def report(rows: list[tuple[str, int]]) -> None:
    width = max(len(name) for name, _ in rows)
    print()
    for name, gas in rows:
        print(f"GAS  {name:<{width}}  {gas:>9,}")


def test_gas_of_every_step_of_a_study_stays_within_budget(
    chain: Any,
    project: Any,
    provider_registry: Any,
    trial_registry: Any,
    admin: AccountAPI,
    sponsor: AccountAPI,
    hospital: AccountAPI,
    clinic: AccountAPI,
    doctor: AccountAPI,
    laboratory: AccountAPI,
    monitor: AccountAPI,
    stranger: AccountAPI,
    participants: list[LocalAccount],
    register_study: Callable[..., Study],
    enrol: Callable[..., Consented],
    withdrawal_request: Callable[..., dict[str, Any]],
    sign_withdrawal: Callable[..., HexBytes],
    submit_data: Callable[..., Any],
    submit_batch: Callable[..., SubmittedBatch],
) -> None:
    registry = trial_registry
    rows: list[tuple[str, int]] = []

    def measure(name: str, receipt: ReceiptAPI) -> ReceiptAPI:
        rows.append((name, receipt.gas_used))
        return receipt

    deployed = project.TrialRegistry.deploy(provider_registry, sender=admin)
    measure("TrialRegistry deployment", chain.get_receipt(deployed.creation_metadata.txn_hash))

    study = register_study(sites=[hospital, clinic])
    measure("registerStudy (2 sites)", study.receipt)
    sid = study.id
    measure("setOutcomes", registry.setOutcomes(sid, 1, digest("p"), digest("s"), sender=sponsor))
    measure("addSite", registry.addSite(sid, laboratory, sender=sponsor))
    measure("setMonitor", registry.setMonitor(sid, monitor, True, sender=sponsor))
    measure("publishSummary", registry.publishSummary(sid, digest("summary"), sender=sponsor))

    first, second, third = participants[:3]
    measure(
        "consent: enrolment relayed by the site",
        enrol(sid, first, sender=hospital, delegate=monitor, readers=READERS_ALL).receipt,
    )
    measure(
        "consent: enrolment relayed by a practitioner",
        enrol(sid, second, sender=doctor).receipt,
    )
    enrol(sid, third, sender=clinic, site=clinic)
    measure(
        "amendProtocol (re-consent)",
        registry.amendProtocol(sid, Protocol.of("v2").args, True, "dose-change", sender=sponsor),
    )
    measure("consent: re-consent", enrol(sid, first, delegate=monitor).receipt)
    enrol(sid, second)

    measure("submitData", submit_data(sid, first).receipt)
    batch_10 = submit_batch(sid, first, size=10)
    measure("submitDataBatch (10 bodies)", batch_10.receipt)
    batch_100 = submit_batch(sid, first, size=100, visit=digest("visit-week-4"))
    measure("submitDataBatch (100 bodies)", batch_100.receipt)
    body = batch_100.bodies[0]  # every proof of a 100-body tree has 7 hashes
    verify = registry.verifyBatchData.encode_input(
        sid, first.address, batch_100.visit, batch_100.root, body.cid_digest, body.commitment,
        body.index, body.proof,
    )  # fmt: skip
    estimate = chain.provider.web3.eth.estimate_gas(
        {"to": registry.address, "data": HexBytes(verify).to_0x_hex()}
    )
    rows.append(("verifyBatchData (100 bodies, eth_estimateGas)", int(estimate)))

    measure("withdraw (by delegate)", registry.withdraw(sid, first.address, sender=monitor))
    request = withdrawal_request(sid, second)
    measure(
        "withdrawWithSignature",
        registry.withdrawWithSignature(request, sign_withdrawal(second, request), sender=stranger),
    )
    measure("cancelSignatures", registry.cancelSignatures(sender=stranger))
    # Version 3 needs no re-consent: nobody consents to it, and its first data freezes it.
    enrol(sid, third, sender=clinic, site=clinic)  # the re-consent to version 2
    registry.amendProtocol(sid, Protocol.of("v3").args, False, "editorial", sender=sponsor)
    assert registry.getProtocolVersion(sid, 3).outcomesFrozenAt == 0
    measure(
        "submitData (first data of a version: freezes its outcomes)",
        submit_data(sid, third, sender=clinic).receipt,
    )
    assert registry.getProtocolVersion(sid, 3).outcomesFrozenAt > 0
    report(rows)

    assert [name for name, _ in rows] == list(BUDGETS), "every budgeted step is measured"
    over = {name: gas for name, gas in rows if gas > BUDGETS[name]}
    assert not over, f"over budget: {over}"
    gas = dict(rows)
    # Only calldata differs (zero bytes of the random root and digests cost less).
    spread = abs(gas["submitDataBatch (100 bodies)"] - gas["submitDataBatch (10 bodies)"])
    assert spread < 500, "a batch's cost does not depend on its size"
    assert {len(b.proof) for b in batch_100.bodies} == {7}, "ceil(log2(100)) hashes each"
    # The freeze is one more write to a slot already written (the version's times).
    extra = gas["submitData (first data of a version: freezes its outcomes)"] - gas["submitData"]
    assert 0 < extra < 8_000, extra
