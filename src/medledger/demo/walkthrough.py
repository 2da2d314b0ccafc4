"""The main job (``medledger demo``): the whole record loop on the embedded defaults.

It deploys the contracts on the local devnet (reusing them on a re-run), has three registrars
verify a hospital and a clinic (2 of 3 approvals each), registers three patients, anchors the
sample FHIR Bundles shipped in ``data/`` as encrypted records, reads one back, and shows
that a tampered body, a swapped pointer and a reader without a key are all caught. Every step
goes through the same package functions the CLI verbs use; a re-run on the same home is safe.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources
from typing import TYPE_CHECKING

import click

from medledger import consent, crypto, fhir, providers, records
from medledger.accounts import dev_account
from medledger.chain import Chain, deployments
from medledger.errors import MedLedgerError
from medledger.ipfs.local import tamper_with_block
from medledger.ipfs.stores import open_store

if TYPE_CHECKING:
    from medledger.accounts import Signer
    from medledger.config import Settings
    from medledger.ipfs.blockstore import BlockStore

REGISTRARS = (0, 1, 2)
THRESHOLD = 2


@dataclass(frozen=True)
class DemoPatient:
    """A demo patient: a devnet account and the sample Bundle that holds their history."""

    account: int
    bundle: str


PATIENTS = (
    DemoPatient(5, "Charis952_Blanda868_3c1a5ef4-bc86-4361-8c60-806f06955bfc.json"),
    DemoPatient(6, "Clarence5_Hodkiewicz467_72ad4e96-92b8-4449-aae6-bbe2d72f0c83.json"),
    DemoPatient(7, "Nathanial472_Mann644_50c49163-008f-4649-963f-90c628c674a0.json"),
)
HOSPITAL, CLINIC, DOCTOR, AMBULANCE = 3, 4, 8, 9


def run(settings: Settings, network: str | None = None, fresh: bool = False) -> None:
    """Run the demo on ``network`` (the devnet by default) and print a summary a person can
    follow; ``fresh`` runs it in a new empty home under the settings' home."""
    if fresh:
        from dataclasses import replace

        home = settings.home / "demo" / time.strftime("%Y%m%d-%H%M%S")
        settings = replace(settings, home=home, deployments_dir=home / "deployments")
    chain = Chain(settings, network)
    store = open_store(settings)
    say = click.echo
    say(f"MedLedger demo: home {settings.home}")
    say(f"  chain: {chain.network} at {chain.url} (chain id {chain.chain_id})")

    step(1, "Contracts")
    recorded, fresh_names = deployments.deploy(
        chain, dev_account(0), [dev_account(i).address for i in REGISTRARS], THRESHOLD
    )
    for name, entry in recorded.contracts.items():
        state = "deployed" if name in fresh_names else "reused"
        say(f"  {name:17} {entry.address} ({state})")

    step(2, "Institutions, verified by registrars (k of n)")
    for index, kind, name in (
        (HOSPITAL, providers.InstitutionKind.HOSPITAL, "St Mary's Hospital"),
        (CLINIC, providers.InstitutionKind.CLINIC, "Riverside Clinic"),
    ):
        say(f"  {name}: {_verify(chain, dev_account(index), kind, name)}")

    step(3, "Patients register with their own keys and let the hospital and clinic write for them")
    for n, p in enumerate(PATIENTS):
        account = dev_account(p.account)
        if providers.participant(chain, account.address).role is providers.Role.NONE:
            providers.register_patient(chain, account)
        how = _open_care(chain, account, signed_at_check_in=n == 0)
        say(f"  dev:{p.account} {account.address}: {how}")

    step(4, "The hospital anchors each patient's FHIR Bundle, one encrypted record per resource")
    hospital = dev_account(HOSPITAL)
    anchored: list[records.Record] = []
    bodies: dict[bytes, bytes] = {}
    total_gas = 0
    grantees = consent.readers_for(chain)  # whoever a live grant lets read a new record
    started = time.perf_counter()
    for p in PATIENTS:
        data = resources.files("medledger.demo.data").joinpath(p.bundle).read_bytes()
        ingest = fhir.load(data, p.bundle)
        drafts = [records.Draft(d.body, d.category) for d in ingest.drafts]
        batch = records.anchor(
            chain, store, hospital, dev_account(p.account).address, drafts, readers=grantees
        )
        for record, draft in zip(batch, drafts, strict=True):
            bodies[record.id] = draft.body
        total_gas += sum(_gas(chain, r) for r in batch)
        anchored.extend(batch)
        categories = sorted({r.category_label for r in batch})
        say(
            f"  {p.bundle.split('_')[0]}: {len(batch)} records ({', '.join(categories)}); "
            f"{len(ingest.warnings)} kinds of schema slip kept as warnings"
        )
    elapsed = time.perf_counter() - started
    say(
        f"  {len(anchored)} records in {elapsed:.1f} s ({len(anchored) / elapsed:.0f} records/s), "
        f"{total_gas // len(anchored):,} gas per record"
    )

    step(5, "The patient reads a record back: verified and decrypted")
    sample = next(r for r in anchored if r.category_label == "encounter")
    patient = dev_account(PATIENTS[0].account)
    body = records.read(chain, store, patient, sample.hex_id)
    same = body == bodies[sample.id]
    say(f"  {sample.uri}")
    say(
        f"  {fhir.summary(body)}: {len(body):,} bytes, "
        f"sha256 {hashlib.sha256(body).hexdigest()[:16]}, "
        f"{'identical to the input' if same else 'DIFFERENT from the input'}"
    )
    if not same:
        raise MedLedgerError("the record read back differs from the input")

    step(6, "Tampering is detected")
    say(f"  altered body:     {_tamper_body(chain, store, sample)}")
    say(f"  swapped pointer:  {_swap_pointer(chain, sample, anchored[-1])}")
    say(f"  another reader:   {_other_reader(chain, store, sample, dev_account(CLINIC))}")

    step(7, "Everything verifies again")
    results = [records.verify(chain, store, r.hex_id, hospital) for r in anchored]
    good = sum(r.ok for r in results)
    say(f"  {good} of {len(results)} records: pointer, body blocks and commitment all match")

    step(8, "The patient grants a doctor at another institution access, then revokes it")
    doctor = _doctor(chain)
    grant = consent.grant(
        chain, store, patient, patient.address, doctor.address,
        consent.Scope(consent.ScopeKind.ALL), consent.Purpose.TREATMENT, timedelta(days=30),
    )  # fmt: skip
    say(f"  Dr (dev:{DOCTOR}, Riverside Clinic) may read all records until {grant.expires_at:%F}")
    seen = consent.read(chain, store, doctor, sample.hex_id)
    check = records.verify(chain, store, sample.hex_id, doctor)
    say(f"  the doctor reads {fhir.summary(seen)} ({'verified' if check.ok else 'NOT verified'})")
    consent.revoke(chain, patient, patient.address, doctor.address, grant.scope)
    say(f"  patient revokes; next read: {_refusal(chain, store, doctor, sample)}")
    (newer,) = records.anchor(
        chain, store, hospital, patient.address,
        [records.Draft(bodies[sample.id] + b"\n", records.Category(int(sample.category)))],
        previous=sample.id if not sample.superseded else None, readers=grantees,
    )  # fmt: skip
    try:
        consent.secret_of(chain, store, doctor, newer)
        leak = "the doctor HAS the new key"
    except MedLedgerError:
        leak = "its fresh key was never wrapped for the revoked doctor"
    readers = len(crypto.readers(store.cat(newer.cid)))
    say(f"  the hospital writes a new version: {leak} ({readers} readers in its header)")

    step(9, "Break-glass: an emergency service opens access without a grant")
    ambulance = dev_account(AMBULANCE)
    kind = providers.InstitutionKind.EMERGENCY_SERVICE
    say(f"  City Ambulance: {_verify(chain, ambulance, kind, 'City Ambulance')}")
    last = consent.emergency_of(chain, patient.address, ambulance.address)
    if last is not None and chain.now() < last.ended_at + consent.EMERGENCY_COOLDOWN:
        # A re-run within the 7-day cooldown: the service may not open again so soon.
        until = last.expires_at
        say("  (opened on an earlier run; the same service may open again only 7 days after "
            "its last opening ended)")  # fmt: skip
    else:
        until = consent.open_emergency_access(
            chain, ambulance, patient.address, timedelta(hours=12),
            "unconscious on arrival, ER triage",
        )  # fmt: skip
    if until > chain.now():
        consent.deliver_keys(
            chain, store, hospital, patient.address, ambulance.address,
            consent.Scope(consent.ScopeKind.ALL),
        )  # fmt: skip
        opened = consent.read(chain, store, ambulance, sample.hex_id)
        say(f"  open until {until:%Y-%m-%d %H:%M}Z; the hospital delivers its keys;")
        say(f"  the ambulance reads {fhir.summary(opened)}")
    else:
        refusal = _refusal(chain, store, ambulance, sample)
        say(f"  the opening ended at {until:%Y-%m-%d %H:%M}Z: {refusal}")
    say("  the patient's audit, emergency first (writes left out here):")
    entries = consent.access_trail(chain, patient.address)
    for line in [e for e in entries if e.event != "record anchored"][:6]:
        say(f"    {line.time}  {line.event:24} {line.actor[:12]}...  {line.detail[:60]}")
    say(f"    ... {len(entries)} events in all: medledger audit --patient {patient.address}")

    step(10, "Insurance: a claim settled automatically, a larger one reviewed and approved in part")
    from medledger.demo import claims as demo_claims

    demo_claims.run(chain, store, patient, dev_account(CLINIC), _verify)

    step(11, "A clinical trial: registered protocol, signed consent, amendment, withdrawal, audit")
    from medledger.demo import trials as demo_trials

    demo_trials.run(chain, store, hospital, _verify)
    say("")
    say("Try it yourself (state persists in this home):")
    say(f"  medledger read {sample.hex_id} --account dev:{PATIENTS[0].account}")
    say(f"  medledger history {sample.hex_id}")
    say(f"  medledger verify --patient {patient.address}")
    if good != len(results):
        raise MedLedgerError(f"{len(results) - good} records failed verification")


def step(number: int, title: str) -> None:
    """Print a step heading."""
    click.echo(f"\n{number}. {title}")


def _verify(chain: Chain, account: Signer, kind: providers.InstitutionKind, name: str) -> str:
    entry = providers.participant(chain, account.address)
    if entry.role is providers.Role.NONE:
        providers.apply_institution(chain, account, kind, name)
    approvals = 0
    for index in REGISTRARS:
        entry = providers.participant(chain, account.address)
        if entry.status is providers.Status.VERIFIED:
            break
        try:
            providers.approve_institution(chain, dev_account(index), account.address)
            approvals += 1
        except MedLedgerError:
            continue  # not a registrar on this deployment, or already approved this round
    entry = providers.participant(chain, account.address)
    if entry.status is not providers.Status.VERIFIED:
        raise MedLedgerError(f"{name} could not be verified ({entry.status.name.lower()})")
    if approvals == 0:
        return f"{kind.label}, already verified ({account.address})"
    return (
        f"{kind.label}, verified by {approvals} of {len(REGISTRARS)} registrars ({account.address})"
    )


def _open_care(chain: Chain, patient: Signer, signed_at_check_in: bool) -> str:
    """Open the patient's care relationships with the hospital and the clinic (until revoked).

    With ``signed_at_check_in`` the patient signs the hospital's off chain and the hospital
    submits it (the patient pays no gas), as a front desk would.
    """
    done = []
    for index, name in ((HOSPITAL, "hospital"), (CLINIC, "clinic")):
        institution = dev_account(index)
        if providers.care_of(chain, patient.address, institution.address).since:
            continue
        if signed_at_check_in and index == HOSPITAL:
            signed = providers.sign_care(chain, patient, patient.address, institution.address, None)
            providers.submit_signed_care(chain, institution, signed)
            done.append(f"{name} (signed at check-in, submitted by the {name})")
        else:
            providers.authorize_care(chain, patient, patient.address, institution.address, None)
            done.append(name)
    return "care relationships with the " + " and ".join(done) if done else "already in care"


def _doctor(chain: Chain) -> Signer:
    """A practitioner of the clinic (invited, then accepting), with a published key."""
    doctor = dev_account(DOCTOR)
    if providers.participant(chain, doctor.address).role is providers.Role.NONE:
        providers.add_practitioner(chain, dev_account(CLINIC), doctor.address)
        providers.accept_practitioner(chain, doctor, dev_account(CLINIC).address)
    if providers.participant(chain, doctor.address).encryption_key is None:
        providers.publish_key(chain, doctor)
    return doctor


def _refusal(chain: Chain, store: BlockStore, reader: Signer, record: records.Record) -> str:
    try:
        consent.read(chain, store, reader, record.hex_id)
    except MedLedgerError as exc:
        return f"refused ({exc})"
    return "NOT REFUSED"


def _gas(chain: Chain, record: records.Record) -> int:
    """Gas of the transaction that anchored ``record`` (its receipt, asked for by hash)."""
    from hexbytes import HexBytes

    receipt = chain.w3.eth.get_transaction_receipt(HexBytes(record.transaction_hash))
    return int(receipt["gasUsed"])


def _tamper_body(chain: Chain, store: BlockStore, record: records.Record) -> str:
    """Flip one byte of the record's stored block, try to read, then restore the block."""
    original = store.get_block(record.cid)
    altered = bytearray(original)
    altered[len(altered) // 2] ^= 0x01
    tamper_with_block(store, record.cid, bytes(altered))  # an attacker with disk access
    try:
        outcome = records.verify(chain, store, record.hex_id, None)
    finally:
        tamper_with_block(store, record.cid, original)
    return f"caught: {outcome.problem}" if not outcome.ok else "NOT DETECTED"


def _swap_pointer(chain: Chain, record: records.Record, other: records.Record) -> str:
    """Present the record with another record's CID, as a forged index or log would."""
    from dataclasses import replace

    forged = replace(record, cid=other.cid)
    try:
        records.check_pointer(chain, forged)
    except MedLedgerError as exc:
        return f"caught: {exc}"
    return "NOT DETECTED"


def _other_reader(chain: Chain, store: BlockStore, record: records.Record, reader: Signer) -> str:
    try:
        consent.read(chain, store, reader, record.hex_id)
    except MedLedgerError as exc:
        return f"refused: {exc}"
    return "NOT REFUSED"
