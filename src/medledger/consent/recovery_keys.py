"""Record keys after a recovery: the holders of a patient's record keys re-wrap them for the
key of the patient's new controller.

A record's body is sealed for its first readers, among them the patient's key at writing time.
After a recovery that key is lost (or stolen), so the new controller cannot open the header.
The holders of the keys (the institutions that wrote the records, whose keys are in every
header they sealed, and the patient's controller restoring from a backup) put the secrets they
hold into a key envelope sealed for the patient's current encryption key, in the context
(patient, controller) of :mod:`medledger.consent.envelopes`, and publish its digest with
``PatientRecovery.deliverRecoveryKeys``. The controller's reads find it through
:class:`medledger.consent.envelopes.Keyring`; a key counts only if it opens its record.
Grants need nothing: they are keyed by the patient's id and their envelopes are sealed for the
grantees.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from medledger import providers, records, sealed
from medledger.addresses import parse_address
from medledger.consent.contract import consent_contract
from medledger.consent.envelopes import document, secret_of
from medledger.errors import MedLedgerError, PreconditionFailed
from medledger.providers import recovery

if TYPE_CHECKING:
    from medledger.accounts import Signer
    from medledger.chain import Chain
    from medledger.crypto import BodySecret
    from medledger.ipfs.blockstore import BlockStore
    from medledger.ipfs.cid import Cid


def deliver_recovery_keys(
    chain: Chain, store: BlockStore, holder: Signer, patient: str
) -> tuple[Cid, int]:
    """Re-wrap every key of ``patient``'s records that ``holder`` holds for the patient's
    current controller, publish the envelope; returns it and how many keys it carries.

    Checked before anything is stored or sent: the patient has a live controller that has
    published its key, and the holder is a verified care institution (or its practitioner) or
    that controller; ``PreconditionFailed`` when the holder holds none of the keys."""
    patient = parse_address(patient, "--patient")
    controller = recovery.controller_of(chain, patient)
    if controller is None:
        raise PreconditionFailed(f"{patient} is frozen: complete its recovery first")
    if holder.address != controller and providers.writer_number(chain, holder.address) == 0:
        raise PreconditionFailed(
            f"{holder.address} holds no keys of {patient}'s records: the institutions that wrote "
            "them (or the patient's controller, from a backup) deliver them"
        )
    key = providers.participant(chain, patient).encryption_key
    if key is None:
        raise PreconditionFailed(
            f"{controller} controls {patient} but has not published its encryption key yet: "
            "it runs: medledger publish-key"
        )
    secrets = _held_secrets(chain, store, holder, records.for_patient(chain, patient, store))
    if not secrets:
        raise PreconditionFailed(f"{holder.address} holds none of the keys of {patient}'s records")
    envelope = sealed.seal_one(store, document(chain, patient, controller, (key,), secrets)).cid
    chain.transact(
        "delivering recovery keys",
        holder,
        recovery.recovery_contract(chain).functions.deliverRecoveryKeys(patient, envelope.digest),
    )
    return envelope, len(secrets)


def _held_secrets(
    chain: Chain, store: BlockStore, holder: Signer, chosen: list[records.Record]
) -> dict[str, BodySecret]:
    """The keys ``holder`` can open of the records not erased, by ``0x`` id."""
    contract = consent_contract(chain)
    registered = [r for r in chosen if r.registered]
    answers = chain.call_many(
        "reading erasures", [contract.functions.isErased(r.id) for r in registered]
    )
    erased = {r.id for r, gone in zip(registered, answers, strict=True) if gone}
    held: dict[str, BodySecret] = {}
    for record in chosen:
        if record.id in erased:
            continue  # an erased record's key is never wrapped again
        try:
            held[record.hex_id] = secret_of(chain, store, holder, record)
        except MedLedgerError:
            continue  # not among its readers: another holder delivers it
    return held
