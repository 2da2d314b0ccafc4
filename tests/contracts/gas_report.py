"""Gas used by every state-changing external function, read from transaction receipts.

Not collected by ``ape test tests/contracts`` (the name does not start with ``test_``); run it
on its own, on either network::

    ape test tests/contracts/gas_report.py --network ethereum:local:test
    ape test tests/contracts/gas_report.py --network ethereum:local:foundry

It prints one table (``gas_used`` of each receipt; the 21,000 base cost and calldata are
included, as a user pays them) and checks that each figure stays under a budget, so that a
change that makes a hot path much dearer fails here instead of going unnoticed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .support import (
    NO_RECORD,
    REGISTRAR_ROLE,
    Category,
    Kind,
    digest,
    merkle_tree,
    new_key,
    record_id,
)

if TYPE_CHECKING:
    import pytest
    from ape.api import AccountAPI, ReceiptAPI

# Upper bounds, about 25% above the figures measured when this report was written.
BUDGETS = {
    "ProviderRegistry deployment": 3_000_000,
    "RecordRegistry deployment": 1_700_000,
    "applyAsInstitution": 95_000,
    "approveInstitution": 75_000,
    "suspendInstitution": 41_000,
    "addPractitioner": 61_000,
    "removePractitioner": 37_000,
    "registerPatient": 90_000,
    "publishEncryptionKey": 45_000,
    "setApprovalThreshold": 41_000,
    "grantRole": 127_000,
    "revokeRole": 53_000,
    "renounceRole": 48_000,
    "anchor": 85_000,
    "anchorBatch": 67_000,
    "registerFromBatch": 82_000,
}


def test_gas_report(
    chain: Any,
    project: Any,
    provider_registry: Any,
    record_registry: Any,
    admin: AccountAPI,
    registrars: list[AccountAPI],
    hospital: AccountAPI,
    clinic: AccountAPI,
    patient: AccountAPI,
    other_patient: AccountAPI,
    doctor: AccountAPI,
    stranger: AccountAPI,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows: list[tuple[str, str, int]] = []

    def measure(function: str, case: str, receipt: ReceiptAPI) -> ReceiptAPI:
        rows.append((function, case, receipt.gas_used))
        return receipt

    providers, records = provider_registry, record_registry

    # Deployments (fresh copies; the fixtures' own deployments are reused below).
    deployed = admin.deploy(project.ProviderRegistry, admin, registrars, 2)
    measure(
        "ProviderRegistry deployment",
        "3 registrars",
        chain.get_receipt(deployed.creation_metadata.txn_hash),
    )
    deployed_records = admin.deploy(project.RecordRegistry, deployed)
    measure(
        "RecordRegistry deployment",
        "",
        chain.get_receipt(deployed_records.creation_metadata.txn_hash),
    )

    # ProviderRegistry
    measure(
        "registerPatient",
        "new patient",
        providers.registerPatient(new_key(), sender=patient),
    )
    providers.registerPatient(new_key(), sender=other_patient)
    measure(
        "publishEncryptionKey",
        "rotation by a patient",
        providers.publishEncryptionKey(new_key(), sender=patient),
    )
    measure(
        "applyAsInstitution",
        "hospital, 24-byte name",
        providers.applyAsInstitution(
            Kind.HOSPITAL, "St. Mary's General (NHS)", new_key(), sender=hospital
        ),
    )
    measure(
        "approveInstitution",
        "1st of 2: counts",
        providers.approveInstitution(hospital, sender=registrars[0]),
    )
    measure(
        "approveInstitution",
        "2nd of 2: verifies",
        providers.approveInstitution(hospital, sender=registrars[1]),
    )
    measure(
        "addPractitioner",
        "",
        providers.addPractitioner(doctor, sender=hospital),
    )
    measure(
        "suspendInstitution",
        "",
        providers.suspendInstitution(hospital, digest("licence-lapsed"), sender=registrars[2]),
    )
    providers.approveInstitution(hospital, sender=registrars[0])
    measure(
        "approveInstitution",
        "2nd of 2: reinstates",
        providers.approveInstitution(hospital, sender=registrars[2]),
    )
    measure(
        "setApprovalThreshold",
        "2 -> 3",
        providers.setApprovalThreshold(3, sender=admin),
    )
    measure(
        "grantRole",
        "REGISTRAR_ROLE, 4th registrar",
        providers.grantRole(REGISTRAR_ROLE, stranger, sender=admin),
    )
    measure(
        "revokeRole",
        "REGISTRAR_ROLE, checks threshold",
        providers.revokeRole(REGISTRAR_ROLE, stranger, sender=admin),
    )
    providers.grantRole(REGISTRAR_ROLE, stranger, sender=admin)
    measure(
        "renounceRole",
        "REGISTRAR_ROLE, checks threshold",
        providers.renounceRole(REGISTRAR_ROLE, stranger, sender=stranger),
    )

    # RecordRegistry
    def anchor(issuer: AccountAPI, label: str, previous: bytes = NO_RECORD) -> ReceiptAPI:
        return records.anchor(
            patient, digest(label), digest(f"{label} salt"), Category.LAB, previous, sender=issuer
        )

    own = measure("anchor", "new record, by the patient", anchor(patient, "own"))
    by_hospital = measure(
        "anchor", "new record, by a verified institution", anchor(hospital, "hospital")
    )
    measure("anchor", "new record, by a practitioner", anchor(doctor, "doctor"))
    first_id = records.RecordAnchored.from_receipt(by_hospital)[0].id
    update = measure(
        "anchor",
        "update, by an institution",
        anchor(hospital, "hospital v2", first_id),
    )
    second_id = records.RecordAnchored.from_receipt(update)[0].id
    measure(
        "anchor",
        "update, by a practitioner",
        anchor(doctor, "hospital v3", second_id),
    )
    own_id = records.RecordAnchored.from_receipt(own)[0].id
    measure("anchor", "update, by the patient", anchor(patient, "own v2", own_id))

    batch_fields = [
        (patient.address, digest(f"b{n}"), digest(f"b{n} salt"), Category.LAB, NO_RECORD)
        for n in range(8)
    ]
    ids = [
        record_id(chain.chain_id, records.address, p, hospital.address, c, m, k, v)
        for p, c, m, k, v in batch_fields
    ]
    root, proofs = merkle_tree(ids)
    batch = measure(
        "anchorBatch",
        "8 records, by an institution",
        records.anchorBatch(root, digest("manifest"), len(ids), sender=hospital),
    )
    batch_id = records.BatchAnchored.from_receipt(batch)[0].batchId
    measure(
        "registerFromBatch",
        "1 of 8, 3-hash proof",
        records.registerFromBatch(
            batch_id, *batch_fields[0], proofs[bytes(ids[0])], sender=patient
        ),
    )

    measure(
        "removePractitioner",
        "",
        providers.removePractitioner(doctor, sender=hospital),
    )

    with capsys.disabled():
        _print_table(chain.provider.network_choice, rows)
    over = [
        f"{function} ({case}): {gas:,} > {BUDGETS[function]:,}"
        for function, case, gas in rows
        if gas > BUDGETS[function]
    ]
    assert not over, "over budget: " + "; ".join(over)
    assert {function for function, _, _ in rows} == set(BUDGETS)


def _print_table(network: str, rows: list[tuple[str, str, int]]) -> None:
    labels = [f"{function} ({case})" if case else function for function, case, _ in rows]
    width = max(map(len, labels)) + 2
    print(f"\n\nGas used on {network} (receipt gas_used)")
    print("-" * (width + 12))
    for label, (_, _, gas) in zip(labels, rows, strict=True):
        print(f"{label:<{width}}{gas:>12,}")
