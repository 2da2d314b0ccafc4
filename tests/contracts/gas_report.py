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

from eth_account import Account
from eth_utils import keccak
from hexbytes import HexBytes

from .support import (
    MAX_UINT40,
    NO_RECORD,
    Category,
    Kind,
    digest,
    indexed_tree,
    key_proof,
    new_key,
    record_id,
    sign_digest,
)

if TYPE_CHECKING:
    import pytest
    from ape.api import AccountAPI, ReceiptAPI

# Upper bounds, about 25% above the figures measured when this report was written. AccessControl's
# grantRole and revokeRole are not listed: REGISTRAR_ROLE's admin is nobody, so they always revert
# (registrars change by voteRegistrar).
BUDGETS = {
    "ProviderRegistry deployment": 5_300_000,
    "RecordRegistry deployment": 1_800_000,
    "applyAsInstitution": 111_000,
    "approveInstitution": 104_000,
    "suspendInstitution": 41_000,
    "addPractitioner": 63_000,
    "acceptPractitioner": 62_000,
    "removePractitioner": 31_000,
    "registerPatient": 100_000,
    "registerPatientWithSignature": 146_000,
    "publishEncryptionKey": 56_000,
    "voteThreshold": 108_000,
    "voteRegistrar": 240_000,
    "renounceRole": 49_000,
    "setDelegate": 61_000,
    "authorizeCare": 66_000,
    "authorizeCareWithSignature": 103_000,
    "revokeCare": 41_000,
    "cancelSignatures": 36_000,
    "anchor": 86_000,
    "anchorBatch": 68_000,
    "registerFromBatch": 85_000,
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

    def keyed(account: Any) -> tuple[bytes, HexBytes]:
        key = new_key()
        return key, key_proof(providers, account, key)

    # Deployments (fresh copies; the fixtures' own deployments are reused below).
    deployed = admin.deploy(project.ProviderRegistry, registrars, 2)
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

    # ProviderRegistry: participants
    measure(
        "registerPatient", "new patient", providers.registerPatient(*keyed(patient), sender=patient)
    )
    providers.registerPatient(*keyed(other_patient), sender=other_patient)
    measure(
        "publishEncryptionKey",
        "rotation by a patient",
        providers.publishEncryptionKey(*keyed(patient), sender=patient),
    )
    measure(
        "applyAsInstitution",
        "hospital, 24-byte name",
        providers.applyAsInstitution(
            Kind.HOSPITAL, "St. Mary's General (NHS)", *keyed(hospital), sender=hospital
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
    providers.applyAsInstitution(Kind.CLINIC, "Clinic", *keyed(clinic), sender=clinic)
    providers.approveInstitution(clinic, sender=registrars[0])
    providers.approveInstitution(clinic, sender=registrars[1])
    measure("addPractitioner", "invitation", providers.addPractitioner(doctor, sender=hospital))
    measure("acceptPractitioner", "", providers.acceptPractitioner(hospital, sender=doctor))
    newcomer_secret = keccak(text="gas-report-newcomer")
    newcomer = Account.from_key(newcomer_secret).address
    key, proof = keyed(newcomer)
    registration = (newcomer, key, 0, 2**40)
    measure(
        "registerPatientWithSignature",
        "new patient with no ETH, relayed by a practitioner",
        providers.registerPatientWithSignature(
            registration,
            proof,
            sign_digest(newcomer_secret, providers.registrationDigest(registration)),
            sender=doctor,
        ),
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

    # ProviderRegistry: registrars govern themselves (2 of 3 votes)
    measure(
        "voteRegistrar",
        "add, 1st of 2: counts",
        providers.voteRegistrar(stranger, True, sender=registrars[0]),
    )
    measure(
        "voteRegistrar",
        "add, 2nd of 2: adds a 4th",
        providers.voteRegistrar(stranger, True, sender=registrars[1]),
    )
    measure(
        "voteThreshold",
        "2 -> 3, 1st of 2: counts",
        providers.voteThreshold(3, sender=registrars[0]),
    )
    measure(
        "voteThreshold",
        "2 -> 3, 2nd of 2: applies",
        providers.voteThreshold(3, sender=registrars[1]),
    )
    providers.voteRegistrar(stranger, False, sender=registrars[0])
    providers.voteRegistrar(stranger, False, sender=registrars[1])
    measure(
        "voteRegistrar",
        "remove, 3rd of 3: removes the 4th",
        providers.voteRegistrar(stranger, False, sender=registrars[2]),
    )
    providers.voteRegistrar(stranger, True, sender=registrars[0])
    providers.voteRegistrar(stranger, True, sender=registrars[1])
    providers.voteRegistrar(stranger, True, sender=registrars[2])
    measure(
        "renounceRole",
        "REGISTRAR_ROLE, checks threshold",
        providers.renounceRole(providers.REGISTRAR_ROLE(), stranger, sender=stranger),
    )

    # ProviderRegistry: delegates and care relationships
    measure(
        "setDelegate",
        "names a delegate",
        providers.setDelegate(other_patient, True, sender=patient),
    )
    measure(
        "authorizeCare",
        "opens, until revoked",
        providers.authorizeCare(patient, hospital, MAX_UINT40, sender=patient),
    )
    measure(
        "authorizeCare",
        "renews, by a delegate",
        providers.authorizeCare(patient, hospital, MAX_UINT40 - 1, sender=other_patient),
    )
    request = (patient.address, clinic.address, MAX_UINT40, providers.nonces(patient), 2**40)
    signature = sign_digest(HexBytes(patient.private_key), providers.careDigest(request))
    measure(
        "authorizeCareWithSignature",
        "signed by the patient, sent by the clinic",
        providers.authorizeCareWithSignature(request, signature, sender=clinic),
    )
    measure(
        "revokeCare",
        "by the institution",
        providers.revokeCare(patient, clinic, sender=clinic),
    )
    measure(
        "cancelSignatures",
        "burns a nonce",
        providers.cancelSignatures(patient, sender=patient),
    )

    # RecordRegistry
    def anchor(issuer: AccountAPI, label: str, previous: bytes = NO_RECORD) -> ReceiptAPI:
        return records.anchor(
            patient, digest(label), digest(f"{label} salt"), Category.LAB, previous, sender=issuer
        )

    own = measure("anchor", "new record, by the patient", anchor(patient, "own"))
    by_hospital = measure(
        "anchor", "new record, by a care institution", anchor(hospital, "hospital")
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

    for size in (8, 40):
        batch_fields = [
            (
                patient.address,
                digest(f"b{size}-{n}"),
                digest(f"b{size}-{n} salt"),
                Category.LAB,
                NO_RECORD,
            )
            for n in range(size)
        ]
        ids = [
            record_id(chain.chain_id, records.address, p, hospital.address, c, m, k, v)
            for p, c, m, k, v in batch_fields
        ]
        root, proofs = indexed_tree(ids)
        measure(
            "anchorBatch",
            f"{size} records, by an institution",
            records.anchorBatch(root, digest("manifest"), len(ids), sender=hospital),
        )
        measure(
            "registerFromBatch",
            f"1 of {size}, {len(proofs[0])}-hash proof",
            records.registerFromBatch(
                hospital, root, batch_fields[0], 0, proofs[0], sender=patient
            ),
        )

    measure(
        "removePractitioner",
        "by the practitioner",
        providers.removePractitioner(doctor, sender=doctor),
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
