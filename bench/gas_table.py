"""Gas used by every state-changing external function, measured from receipts on Anvil.

    .venv/bin/python bench/gas_table.py

Starts a devnet in a temporary MEDLEDGER_HOME (127.0.0.1 only), drives each function once in a
realistic state through the package, and writes ``bench/results/gas.json`` and ``gas.md``.
Views are listed with ``eth_estimateGas`` (which includes the 21,000 of a transaction).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from datetime import timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    home = Path(tempfile.mkdtemp(prefix="medledger-gas-"))
    os.environ["MEDLEDGER_HOME"] = str(home)
    os.environ["MEDLEDGER_DEPLOYMENTS"] = str(home / "deployments")
    from eth_account import Account
    from eth_account.messages import encode_typed_data
    from hexbytes import HexBytes

    from medledger import access, batches, crypto, deployments, devnet, merkle, records, registry
    from medledger.accounts import dev_account as dev
    from medledger.categories import Category
    from medledger.chain import Chain
    from medledger.config import load_settings
    from medledger.stores import open_store

    settings = load_settings()
    chain = Chain(settings)
    rows: list[tuple[str, str, int, str]] = []

    def tx(contract: str, function: str, account, call, note: str = "") -> None:  # type: ignore[no-untyped-def]
        receipt = chain.transact(function, account, call)
        rows.append((contract, function, int(receipt["gasUsed"]), note))

    try:
        admin = dev(0)
        recorded, _ = deployments.deploy(chain, admin, [dev(i).address for i in (0, 1, 2)], 2)
        for name, entry in recorded.contracts.items():
            receipt = chain.w3.eth.get_transaction_receipt(HexBytes(entry.transaction_hash))
            rows.append((name, "constructor (deployment)", int(receipt["gasUsed"]), ""))
        providers = deployments.contract(chain, "ProviderRegistry")
        registry_ = deployments.contract(chain, "RecordRegistry")
        consent = deployments.contract(chain, "ConsentManager")
        hospital, clinic, patient, doctor, ems, other = dev(3), dev(4), dev(5), dev(6), dev(8), dev(7)
        key = crypto.public_key

        tx("ProviderRegistry", "applyAsInstitution", hospital,
           providers.functions.applyAsInstitution(1, "St Mary's Hospital", key(hospital.key)))
        tx("ProviderRegistry", "approveInstitution", dev(0), providers.functions.approveInstitution(hospital.address), "1st of 2")
        tx("ProviderRegistry", "approveInstitution", dev(1), providers.functions.approveInstitution(hospital.address), "2nd: verifies")
        tx("ProviderRegistry", "suspendInstitution", dev(2), providers.functions.suspendInstitution(hospital.address, b"audit".ljust(32, b"\0")))
        tx("ProviderRegistry", "approveInstitution", dev(0), providers.functions.approveInstitution(hospital.address), "reinstatement, 1st")
        tx("ProviderRegistry", "approveInstitution", dev(2), providers.functions.approveInstitution(hospital.address), "reinstatement, 2nd")
        tx("ProviderRegistry", "addPractitioner", hospital, providers.functions.addPractitioner(doctor.address))
        tx("ProviderRegistry", "publishEncryptionKey", doctor, providers.functions.publishEncryptionKey(key(doctor.key)), "first key")
        tx("ProviderRegistry", "publishEncryptionKey", doctor, providers.functions.publishEncryptionKey(key(other.key)), "rotation")
        tx("ProviderRegistry", "registerPatient", patient, providers.functions.registerPatient(key(patient.key)))
        registry.register_patient(chain, other)
        tx("ProviderRegistry", "setApprovalThreshold", admin, providers.functions.setApprovalThreshold(3))
        for applicant, kind, name in ((clinic, 2, "Riverside Clinic"), (ems, 6, "City Ambulance")):
            registry.apply_institution(chain, applicant, registry.InstitutionKind(kind), name)
            for i in (0, 1, 2):
                registry.approve_institution(chain, dev(i), applicant.address)
        spare = Account.create()
        tx("ProviderRegistry", "removePractitioner", hospital, providers.functions.removePractitioner(doctor.address))

        store = open_store(settings)
        body = os.urandom(1000)
        (first,) = records.anchor(chain, store, hospital, patient.address, [records.Draft(body, Category.LAB)])
        rows.append(("RecordRegistry", "anchor", _gas(chain, first), "new record (with all metadata)"))
        (second,) = records.anchor(chain, store, hospital, patient.address, [records.Draft(body, Category.LAB)], previous=first.id)
        rows.append(("RecordRegistry", "anchor", _gas(chain, second), "new version (supersedes)"))
        (own,) = records.anchor(chain, store, patient, patient.address, [records.Draft(body, Category.OTHER)])
        rows.append(("RecordRegistry", "anchor", _gas(chain, own), "by the patient"))
        for size in (100, 1000):
            batch = batches.anchor_batch(chain, store, hospital, [batches.Entry(patient.address, records.Draft(body, Category.VITALS)) for _ in range(size)])
            rows.append(("RecordRegistry", "anchorBatch", batch.gas_used, f"{size} records: {batch.gas_used / size:.1f} gas/record"))
        target = batch.records[0]
        batch_id, proof = batches.proof(chain, store, target.id)
        args = (batch_id, target.patient, target.cid.digest, target.commitment, int(target.category), bytes(32), proof)
        rows.append(("RecordRegistry", "verifyBatchRecord (view)", int(registry_.functions.verifyBatchRecord(*args).estimate_gas()), f"proof of {len(proof)} hashes; includes 21,000"))
        tx("RecordRegistry", "registerFromBatch", other, registry_.functions.registerFromBatch(*args))
        assert merkle.verify(proof, batch_id, target.id)

        expires = int(time.time()) + 30 * 86400
        tx("ConsentManager", "grant", patient, consent.functions.grant(patient.address, other.address, 2, bytes(32), 1, expires, os.urandom(32)), "scope all")
        tx("ConsentManager", "grant", patient, consent.functions.grant(patient.address, other.address, 0, first.id, 1, expires, os.urandom(32)), "scope record")
        nonce = consent.functions.nonces(patient.address).call()
        request = {"patient": patient.address, "grantee": other.address, "scopeKind": 1, "scope": "0x" + (4).to_bytes(32, "big").hex(), "purpose": 1, "expiresAt": expires, "envelopeDigest": "0x" + os.urandom(32).hex(), "nonce": nonce, "deadline": expires}
        typed = access._typed_data(chain, consent, request)  # noqa: SLF001 - the package's own EIP-712 layout
        signature = Account.sign_message(encode_typed_data(full_message=typed), patient.key).signature
        tuple_args = (request["patient"], request["grantee"], 1, HexBytes(request["scope"]), 1, expires, HexBytes(request["envelopeDigest"]), nonce, expires)
        tx("ConsentManager", "grantWithSignature", dev(9), consent.functions.grantWithSignature(tuple_args, signature), "submitted by a relayer")
        rows.append(("ConsentManager", "hasAccess (view)", int(consent.functions.hasAccess(other.address, first.id).estimate_gas()), "includes 21,000"))
        tx("ConsentManager", "revoke", patient, consent.functions.revoke(patient.address, other.address, 0, first.id))
        tx("ConsentManager", "setDelegate", patient, consent.functions.setDelegate(spare.address, True))
        tx("ConsentManager", "openEmergencyAccess", ems, consent.functions.openEmergencyAccess(patient.address, 12 * 3600, "unconscious on arrival"))
        tx("ConsentManager", "deliverKeys", hospital, consent.functions.deliverKeys(patient.address, ems.address, 2, bytes(32), os.urandom(32)))
        tx("ConsentManager", "logAccess", other, consent.functions.logAccess([first.id]), "1 read")
        more = records.anchor(chain, store, hospital, patient.address, [records.Draft(os.urandom(100), Category.LAB) for _ in range(99)])
        tx("ConsentManager", "logAccess", other, consent.functions.logAccess([first.id] + [r.id for r in more]), "100 reads in one transaction")
        tx("ConsentManager", "eraseRecord", patient, consent.functions.eraseRecord(own.id))
    finally:
        devnet.stop(settings)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "gas.json").write_text(json.dumps([dict(zip(("contract", "function", "gas", "note"), r, strict=True)) for r in rows], indent=2) + "\n")
    table = ["| contract | function | gas | note |", "|---|---|---:|---|"]
    table += [f"| {c} | {f} | {g:,} | {n} |" for c, f, g, n in rows]
    (out / "gas.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))
    return 0


def _gas(chain, record) -> int:  # type: ignore[no-untyped-def]
    from hexbytes import HexBytes

    return int(chain.w3.eth.get_transaction_receipt(HexBytes(record.transaction_hash))["gasUsed"])


if __name__ == "__main__":
    raise SystemExit(main())
