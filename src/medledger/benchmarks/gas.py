"""Gas of every external function of every contract, read from the receipts of a real run.

Two fresh devnets are driven through the package: the whole demo (records, grants,
break-glass, insurance claims, a clinical trial) and a flow for what the demo does not touch
(suspension and reinstatement, practitioners, key rotation, a relayed registration, batches,
signed grants, delegates, erasure, a 100-read access log). Then every transaction of both
chains is decoded: its target names the contract, its selector the function, its receipt the
gas. A function of a deployed contract's ABI that no transaction called is listed as not
exercised, so the table says what it does not cover. Views are estimated with
``eth_estimateGas`` (which includes the 21,000 of a transaction).
"""

from __future__ import annotations

import contextlib
import io
import os
import statistics
import time
from collections import defaultdict
from typing import TYPE_CHECKING, Any, cast

from medledger.benchmarks.harness import receipt_gas, temporary_home

if TYPE_CHECKING:
    from eth_typing import ABIFunction

    from medledger.chain import Chain

Calls = dict[tuple[str, str], list[int]]


def measure(quick: bool) -> dict[str, Any]:
    """Run both flows and return the gas rows (median of each function's calls)."""
    del quick  # both flows are short; quick and full measure the same
    calls: Calls = defaultdict(list)
    views: list[dict[str, Any]] = []
    abis: dict[str, list[dict[str, Any]]] = {}
    with temporary_home() as (settings, chain):
        _demo(settings)
        _after_demo(settings, chain)
        _scan(chain, calls, abis)
    with temporary_home() as (settings, chain):
        views = _extra_flow(settings, chain)
        _scan(chain, calls, abis)
    rows: list[dict[str, Any]] = []
    for contract in sorted(abis):
        for function in sorted(_transacting(abis[contract])):
            gas = calls.get((contract, function), [])
            note = (
                f"{len(gas)} call{'s' * (len(gas) > 1)}, {min(gas):,}-{max(gas):,}"
                if len(gas) > 1 else ("1 call" if gas else "not exercised in this run")
            )  # fmt: skip
            rows.append({
                "contract": contract, "function": function, "kind": "tx",
                "gas": round(statistics.median(gas)) if gas else None, "note": note,
            })  # fmt: skip
        for (name, function), gas in sorted(calls.items()):
            if name == contract and function == "constructor":
                rows.append({"contract": contract, "function": "constructor (deployment)",
                             "kind": "tx", "gas": gas[0], "note": ""})  # fmt: skip
    rows.extend(views)
    exercised = sum(1 for r in rows if r["kind"] == "tx" and r["gas"] is not None)
    total = sum(1 for r in rows if r["kind"] == "tx")
    return {"rows": rows, "exercised": exercised, "functions": total}


def _transacting(abi: list[dict[str, Any]]) -> set[str]:
    return {
        e["name"] for e in abi
        if e.get("type") == "function" and e.get("stateMutability") not in ("view", "pure")
    }  # fmt: skip


def _demo(settings: Any) -> None:
    from medledger import demo

    with contextlib.redirect_stdout(io.StringIO()):
        demo.run(settings)


def _after_demo(settings: Any, chain: Chain) -> None:
    """Continue the demo's story with the calls it leaves out: a dispute and its resolution,
    a site added, a summary published, a direct withdrawal, and the inherited OpenZeppelin
    token, ownership and role functions."""
    from decimal import Decimal

    from eth_utils.crypto import keccak

    from medledger import claims, trials
    from medledger.accounts import dev_account as dev
    from medledger.chain import deployments
    from medledger.demo.claims import RESOLVER
    from medledger.demo.trials import PARTICIPANTS, SPONSOR
    from medledger.ipfs.stores import open_store

    store = open_store(settings)
    clinic, resolver, sponsor = dev(4), dev(RESOLVER), dev(SPONSOR)
    reviewed = next(
        c for c in claims.claims(chain) if c.state is claims.ClaimState.PARTIALLY_APPROVED
    )
    claims.dispute(chain, clinic, reviewed.id, claims.ReasonCode.AMOUNT_DISPUTED)
    claims.resolve(chain, resolver, reviewed.id, Decimal(0))
    study = trials.studies(chain)[0]
    trials.add_site(chain, sponsor, study.id, clinic.address)
    trials.publish_summary(chain, store, sponsor, study.id, b'{"resourceType":"Basic"}')
    first = dev(PARTICIPANTS[0])
    trials.withdraw(chain, first, study.id, first.address)

    send = chain.transact
    token = deployments.contract(chain, "DevStablecoin")
    owner, spender, other = dev(0), dev(1), dev(2)
    send("mint", owner, token.functions.mint(owner.address, 10**6))
    send("transfer", owner, token.functions.transfer(other.address, 1))
    send("approve", owner, token.functions.approve(spender.address, 2))
    send("transferFrom", spender, token.functions.transferFrom(owner.address, other.address, 2))
    send("ownership", owner, token.functions.transferOwnership(spender.address))
    send("ownership", spender, token.functions.renounceOwnership())
    role = keccak(text="BENCH_ROLE")
    for name in ("ClaimsManager",):  # the ProviderRegistry has no admin: its roles move by vote
        contract = deployments.contract(chain, name)
        send("role", owner, contract.functions.grantRole(role, other.address))
        send("role", owner, contract.functions.revokeRole(role, other.address))
        send("role", owner, contract.functions.grantRole(role, other.address))
        send("role", other, contract.functions.renounceRole(role, other.address))


def _scan(chain: Chain, calls: Calls, abis: dict[str, list[dict[str, Any]]]) -> None:
    """Add every transaction of ``chain`` to ``calls`` by (contract, function)."""
    from eth_utils.abi import function_abi_to_4byte_selector

    from medledger.chain import deployments
    from medledger.chain.artifacts import artifact

    by_address: dict[str, str] = {}
    selectors: dict[str, dict[bytes, str]] = {}
    for name, entry in deployments.require(chain).contracts.items():
        by_address[entry.address.lower()] = name
        abi = artifact(name).abi
        abis[name] = abi
        functions = [cast("ABIFunction", e) for e in abi if e.get("type") == "function"]
        selectors[name] = {function_abi_to_4byte_selector(f): f["name"] for f in functions}
    w3 = chain.w3
    for number in range(w3.eth.block_number + 1):
        block: Any = w3.eth.get_block(number, full_transactions=True)
        for tx in block["transactions"]:
            receipt: Any = w3.eth.get_transaction_receipt(tx["hash"])
            if tx["to"] is None:
                created = str(receipt["contractAddress"]).lower()
                if created in by_address:
                    calls[(by_address[created], "constructor")].append(int(receipt["gasUsed"]))
                continue
            target = by_address.get(str(tx["to"]).lower())
            if target is None or receipt["status"] != 1:
                continue
            function = selectors[target].get(bytes(tx["input"])[:4])
            if function is not None:
                calls[(target, function)].append(int(receipt["gasUsed"]))


def _extra_flow(settings: Any, chain: Chain) -> list[dict[str, Any]]:
    """Drive the functions the demo does not; return the view estimates."""
    from datetime import timedelta

    from eth_account import Account
    from hexbytes import HexBytes

    from medledger import consent, providers, records
    from medledger.accounts import Key
    from medledger.accounts import dev_account as dev
    from medledger.chain import deployments
    from medledger.crypto import eip712
    from medledger.ipfs.stores import open_store

    deployments.deploy(chain, dev(0), [dev(i).address for i in (0, 1, 2)], 2)
    provider_registry = deployments.contract(chain, "ProviderRegistry")
    record_registry = deployments.contract(chain, "RecordRegistry")
    consent_manager = deployments.contract(chain, "ConsentManager")
    hospital, patient, doctor, ems, other = dev(3), dev(5), dev(6), dev(8), dev(7)
    send = chain.transact
    hospital_kind = providers.InstitutionKind.HOSPITAL
    providers.apply_institution(chain, hospital, hospital_kind, "St Mary's")
    for i in (0, 1):
        providers.approve_institution(chain, dev(i), hospital.address)
    send(
        "suspending",
        dev(2),
        provider_registry.functions.suspendInstitution(hospital.address, b"audit".ljust(32, b"\0")),
    )
    for i in (0, 2):
        reinstate = provider_registry.functions.approveInstitution(hospital.address)
        send("reinstating", dev(i), reinstate)
    providers.add_practitioner(chain, hospital, doctor.address)
    providers.accept_practitioner(chain, doctor, hospital.address)
    providers.publish_key(chain, doctor)
    providers.publish_key(chain, doctor)  # a rotation (to the same key) costs the same
    providers.register_patient(chain, patient)
    providers.register_patient(chain, other)
    newcomer = Key.from_private_key(os.urandom(32))  # no ETH: the hospital relays its signature
    signed_registration = providers.sign_registration(chain, newcomer)
    providers.submit_signed_registration(chain, hospital, signed_registration)
    for i in (0, 1):
        providers.vote_threshold(chain, dev(i), 3)
    spare = Account.create()
    for i in (0, 1, 2):
        providers.vote_registrar(chain, dev(i), spare.address, True)
    for i in (0, 1, 2):
        providers.vote_registrar(chain, dev(i), spare.address, False)
    providers.apply_institution(chain, ems, providers.InstitutionKind(6), "City Ambulance")
    for i in (0, 1, 2):
        providers.approve_institution(chain, dev(i), ems.address)
    providers.remove_practitioner(chain, hospital, doctor.address)
    providers.set_delegate(chain, patient, Account.create().address, True)
    signed = providers.sign_care(chain, patient, patient.address, hospital.address, None)
    providers.submit_signed_care(chain, hospital, signed)
    providers.authorize_care(chain, patient, patient.address, ems.address, None)
    providers.revoke_care(chain, patient, patient.address, ems.address)
    providers.cancel_care_signatures(chain, patient, patient.address)

    store = open_store(settings)
    body = os.urandom(1000)
    scenarios: list[dict[str, Any]] = []

    def scenario(contract: str, what: str, gas: int, note: str) -> None:
        scenarios.append({"contract": contract, "function": what, "kind": "scenario",
                          "gas": gas, "note": note})  # fmt: skip

    def gas_of(transaction_hash: str) -> int:
        return receipt_gas(chain, transaction_hash)

    readers = consent.readers_for(chain)
    lab, vitals = records.Category.LAB, records.Category.VITALS
    (first,) = records.anchor(
        chain, store, hospital, patient.address, [records.Draft(body, lab)], readers=readers
    )
    (second,) = records.anchor(
        chain, store, hospital, patient.address, [records.Draft(body, lab)], previous=first.id,
        readers=readers,
    )  # fmt: skip
    (own,) = records.anchor(
        chain, store, patient, patient.address, [records.Draft(body, records.Category.OTHER)],
        readers=readers,
    )  # fmt: skip
    scenario("RecordRegistry", "anchor: a new record", gas_of(first.transaction_hash),
             "by a hospital in care of the patient")  # fmt: skip
    scenario("RecordRegistry", "anchor: a new version", gas_of(second.transaction_hash),
             "by the previous version's writer")  # fmt: skip
    scenario("RecordRegistry", "anchor: the patient's own record", gas_of(own.transaction_hash),
             "")  # fmt: skip
    for size in (100, 1000):
        # A body of its own for each entry: a body the issuer already anchored for this patient
        # is not written again (records.once), which left these batches empty.
        entries = [records.Entry(patient.address, records.Draft(os.urandom(1000), vitals))
                   for _ in range(size)]  # fmt: skip
        batch = records.anchor_batch(chain, store, hospital, entries, readers=readers)
        scenario("RecordRegistry", f"anchorBatch: gas per record at {size:,}",
                 round(batch.gas_used / size), f"{batch.gas_used:,} for the batch")  # fmt: skip
    target = batch.records[0]
    where = records.batch_proof(chain, store, target.id)
    entry = (target.patient, target.cid.digest, target.commitment, int(target.category), bytes(32))
    args = (where.issuer, where.root, entry, where.index, where.siblings)
    verify_gas = int(record_registry.functions.verifyBatchRecord(*args).estimate_gas())
    send("registering", other, record_registry.functions.registerFromBatch(*args))

    expires = int(time.time()) + 30 * 86400
    receipt = send(
        "grant",
        patient,
        consent_manager.functions.grant(
            patient.address, other.address, 2, bytes(32), 1, expires, os.urandom(32)
        ),
    )
    scenario("ConsentManager", "grant: scope all", receipt.gas_used, "by the patient")
    receipt = send(
        "grant",
        patient,
        consent_manager.functions.grant(
            patient.address, other.address, 0, first.id, 1, expires, os.urandom(32)
        ),
    )
    scenario("ConsentManager", "grant: one record", receipt.gas_used, "by the patient")
    nonce = consent_manager.functions.nonces(patient.address).call()
    request = {
        "patient": patient.address, "grantee": other.address, "scopeKind": 1,
        "scope": "0x" + (4).to_bytes(32, "big").hex(), "purpose": 1, "expiresAt": expires,
        "envelopeDigest": "0x" + os.urandom(32).hex(), "nonce": nonce, "deadline": expires,
    }  # fmt: skip
    typed = eip712.typed_data(
        "ConsentManager", chain.chain_id, consent_manager.address, "GrantRequest",
        consent.GRANT_FIELDS, request,
    )  # fmt: skip
    signature = eip712.sign(patient.key, typed)
    fields = (request["patient"], request["grantee"], 1, HexBytes(request["scope"]), 1, expires,
              HexBytes(request["envelopeDigest"]), nonce, expires)  # fmt: skip
    send("relayed grant", dev(9), consent_manager.functions.grantWithSignature(fields, signature))
    manager = consent_manager.functions
    has_access_gas = int(manager.hasAccess(other.address, first.id).estimate_gas())
    send("revoke", patient, manager.revoke(patient.address, other.address, 0, first.id))
    relayed = consent.Scope.from_chain(1, (4).to_bytes(32, "big"))  # the relayed grant's
    signed_revocation = consent.sign_revocation(chain, patient, other.address, relayed)
    consent.submit_signed_revocation(chain, hospital, signed_revocation)
    consent.cancel_signatures(chain, patient, patient.address)
    consent.open_emergency_access(
        chain, ems, patient.address, timedelta(hours=12), "unconscious on arrival"
    )
    send(
        "deliver",
        hospital,
        manager.deliverKeys(patient.address, ems.address, 2, bytes(32), os.urandom(32)),
    )
    consent.close_emergency_access(chain, patient, patient.address, ems.address)
    send("log", other, manager.logAccess([first.id]))
    more = records.anchor(
        chain, store, hospital, patient.address,
        [records.Draft(os.urandom(100), lab) for _ in range(99)], readers=readers,
    )  # fmt: skip
    send("log 100", other, manager.logAccess([first.id] + [r.id for r in more]))
    send("serve", hospital, manager.logAccessFor(other.address, [first.id]))
    served = [first.id] + [r.id for r in more]
    send("serve 100", hospital, manager.logAccessFor(other.address, served))
    send("erase", patient, manager.eraseRecord(own.id))
    scenarios.extend(_claims_scenarios(chain, store, hospital, patient))
    scenarios.extend(_enrolment_scenarios(chain, store, hospital))
    return [
        *scenarios,
        {"contract": "RecordRegistry", "function": "verifyBatchRecord", "kind": "view",
         "gas": verify_gas, "note": f"proof of {len(where.siblings)} hashes (1,000-record batch)"},
        {"contract": "ConsentManager", "function": "hasAccess", "kind": "view",
         "gas": has_access_gas, "note": "record-scoped grant"},
    ]  # fmt: skip


def _enrolment_scenarios(chain: Chain, store: Any, site: Any) -> list[dict[str, Any]]:
    """Enrolments at ``site`` in a study that takes anyone and in one that requires
    participants attested by their enrolling site (the site attests a newly registered person,
    then each study account the person's identity link ties to them): the median gas of the
    later enrolments of each (the first sets the study's first enrolment time)."""
    from eth_utils.crypto import keccak

    from medledger import identity, providers, trials
    from medledger.accounts import Key
    from medledger.accounts import dev_account as dev
    from medledger.demo.trials import SPONSOR, protocol

    sponsor, person = dev(SPONSOR), dev(12)
    _verify(chain, sponsor, providers.InstitutionKind.RESEARCH_SPONSOR, "Bench Research")
    providers.register_patient(chain, person)
    identity.attest(chain, site, person.address)  # a first attestation, as the claims' one

    def enrol(label: str, attested: bool) -> list[int]:
        study = trials.register_study(
            chain, store, sponsor, protocol(f"Bench {label}", ["baseline"]), [site.address]
        )
        if attested:
            trials.require_attested_participants(chain, sponsor, study.id)
        gas = []
        for n in range(4):
            participant = Key.from_private_key(keccak(text=f"bench-{label}-participant-{n}"))
            if attested:
                link = trials.link_proof(chain, study.id, participant, person)
                identity.attest_study_account(chain, site, link)
            document = trials.sign_consent(chain, participant, study.id, site.address)
            trials.submit_consent(chain, site, document)
            (event,) = trials.recorded_consents(chain, study.id, participant.address)
            gas.append(receipt_gas(chain, event.transaction_hash))
        return gas

    plain = enrol("open", False)
    return _with_and_without(
        "TrialRegistry", "consent: an enrolment", "attested participants required",
        plain, enrol("attested", True), f"the study's first: {plain[0]:,}",
    )  # fmt: skip


def _verify(chain: Chain, account: Any, kind: Any, name: str) -> None:
    """``account`` applies as an institution of ``kind``; the bench's registrars approve it
    until it is verified."""
    from medledger import providers
    from medledger.accounts import dev_account as dev

    providers.apply_institution(chain, account, kind, name)
    for i in (0, 1, 2):
        if providers.participant(chain, account.address).status is not providers.Status.VERIFIED:
            providers.approve_institution(chain, dev(i), account.address)


def _with_and_without(
    contract: str, what: str, requirement: str, plain: list[int], checked: list[int], first: str
) -> list[dict[str, Any]]:
    """The scenario rows of ``what`` without and with ``requirement``: each the median of all
    but its first run (``first`` says what the first cost), the second noting the check's extra
    gas against the issue's target."""
    plain_gas = round(statistics.median(plain[1:]))
    checked_gas = round(statistics.median(checked[1:]))
    return [
        {"contract": contract, "function": what, "kind": "scenario", "gas": plain_gas,
         "note": first},
        {"contract": contract, "function": f"{what}, {requirement}", "kind": "scenario",
         "gas": checked_gas,
         "note": f"the attestation check: {checked_gas - plain_gas:+,} gas (target: +5,000)"},
    ]  # fmt: skip


def _claims_scenarios(
    chain: Chain, store: Any, provider: Any, patient: Any
) -> list[dict[str, Any]]:
    """An insurer's policy and three small claims that settle automatically; the gas of the
    later ones (a clinic that was paid before: its token balance is no longer zero). Then the
    same under a policy that requires an attested patient (the clinic attests, then revokes).

    Settlement pays at once, so submission is the whole path from claim to payment."""
    from datetime import timedelta
    from decimal import Decimal

    from medledger import claims, consent, identity, providers, records
    from medledger.accounts import dev_account as dev
    from medledger.demo import claims as demo_claims

    insurer = dev(10)
    _verify(chain, insurer, providers.InstitutionKind.INSURER, "Acme")
    policy = claims.issue_policy(
        chain, store, insurer, patient.address, coverage=Decimal("0.8"), deductible=Decimal(0),
        annual_limit=Decimal(10_000), auto_settle_limit=Decimal(500),
        codes=[claims.Code(demo_claims.CPT, "99213")], plan="Bench",
    )  # fmt: skip
    claims.fund_policy(chain, insurer, policy.id, Decimal(5_000))
    financial = consent.Scope(consent.ScopeKind.CATEGORY, category=records.Category.FINANCIAL)
    consent.grant(chain, store, patient, patient.address, insurer.address, financial,
                 consent.Purpose.PAYMENT, timedelta(days=30))  # fmt: skip
    terms = claims.read_terms(chain, store, patient, policy)
    reference = f"urn:medledger:patient:{patient.address}"
    (visit,) = records.anchor(  # the evidence every claim needs
        chain, store, provider, patient.address,
        [records.Draft(demo_claims.encounter(reference, chain.now()), records.Category.ENCOUNTER)],
        readers=consent.readers_for(chain),
    )  # fmt: skip
    consent.grant(chain, store, patient, patient.address, insurer.address,
                  consent.Scope(consent.ScopeKind.RECORD, record=visit.id),
                  consent.Purpose.PAYMENT, timedelta(days=30))  # fmt: skip

    def settle(policy_id: int, policy_terms: Any, days_ago: int) -> list[int]:
        gas: list[int] = []
        for n in range(days_ago, days_ago + 3):
            body = demo_claims.claim(
                reference, f"visit-{n}", [("99213", Decimal(100))], chain.now() - timedelta(days=n)
            )  # one visit a day: the same codes in one service period are the same care
            settled = claims.submit_claim(
                chain, store, provider, policy_id, body, terms=policy_terms, evidence=[visit.id]
            )
            if not settled.automatic:
                raise RuntimeError(f"bench claim {n} was not settled automatically")
            # the claim's first event is its submission, whose transaction paid it at once
            submitted = claims.claim_history(chain, settled.id)[0]
            if submitted.event != "submitted":
                raise RuntimeError(f"claim {n}'s first event is not its submission")
            gas.append(receipt_gas(chain, submitted.transaction_hash))
        return gas

    gas = settle(policy.id, terms, 0)
    # The same claims under a policy that requires the provider's attestation of the patient.
    identity.attest(chain, provider, patient.address)
    attested = claims.issue_policy(
        chain, store, insurer, patient.address, coverage=Decimal("0.8"), deductible=Decimal(0),
        annual_limit=Decimal(10_000), auto_settle_limit=Decimal(500),
        codes=[claims.Code(demo_claims.CPT, "99213")], plan="Bench", require_attested=True,
    )  # fmt: skip
    claims.fund_policy(chain, insurer, attested.id, Decimal(5_000))
    checked = settle(attested.id, claims.read_terms(chain, store, patient, attested), 3)
    identity.revoke(chain, provider, patient.address)
    return _with_and_without(
        "ClaimsManager", "submitClaim: settled automatically, paid at once",
        "patient attestation required", gas, checked,
        f"a provider paid before; its first: {gas[0]:,} (first token receipt)",
    )  # fmt: skip
