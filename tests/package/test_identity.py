# ruff: noqa: F811  (test_claims's fixtures, imported, are parameters here)
"""Identity attestations (issue #18, parts 1 and 2): a verified care institution attests that a
patient address belongs to a person it identified, with an expiry, revocable by it and void once
it is suspended; a policy that requires an attested patient refuses claims whose care provider
does not attest the patient, in the package (before anything is sent) and in the contract.

Exploits first: who may attest and revoke, a suspended institution's attestation, an expired one.
The claim scenarios reuse ``test_claims``'s roles and factories (the clinic, dev:4, writes and
bills; the insurer, dev:10, pays) with this module's ``policy``, which requires attestation.
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from test_claims import (  # noqa: F401  (fixtures)
    CODES,
    advance,
    claim_body,
    insurer,
    payment_consent,
    provider,
    store,
    submit,
    terms,
    visit,
)

from medledger import claims, identity, providers
from medledger.accounts import dev_account
from medledger.errors import PreconditionFailed, TransactionReverted

DAY = 24 * 3600


@pytest.fixture
def policy(chain, store, insurer, registered_patient):
    """``test_claims``'s policy (80 %, deductible 50, automatic up to 500, funded 5,000), issued
    requiring an attested patient."""
    issued = claims.issue_policy(
        chain, store, insurer, registered_patient.address, coverage=Decimal("0.8"),
        deductible=Decimal(50), annual_limit=Decimal(2_000), auto_settle_limit=Decimal(500),
        codes=CODES, require_attested=True,
    )  # fmt: skip
    return claims.fund_policy(chain, insurer, issued.id, Decimal(5_000))


def raw(chain, signer, action, function):
    """Send a call without the package's checks: what the contract alone does."""
    return chain.transact(action, signer, function)


def registry(chain):
    return identity.model.registry(chain)


# ---------------------------------------------------------------------------- who may attest


@pytest.mark.parametrize("who", ["stranger", "insurer", "patient"])
def test_only_a_verified_care_institution_attests(
    chain, registered_patient, insurer, stranger, who
):
    account = {"stranger": stranger, "insurer": insurer, "patient": registered_patient}[who]
    with pytest.raises(PreconditionFailed, match="not a verified care institution"):
        identity.attest(chain, account, registered_patient.address)
    with pytest.raises(TransactionReverted, match="IdentityNotCareInstitution"):
        raw(
            chain,
            account,
            "attesting",
            registry(chain).functions.attest(
                registered_patient.address, int(chain.now().timestamp()) + DAY, b"\0" * 32
            ),
        )
    assert identity.attestations_of(chain, registered_patient.address) == []


def test_an_unregistered_address_and_a_bad_expiry_are_refused(chain, provider, stranger):
    with pytest.raises(Exception, match="not a registered patient"):
        identity.attest(chain, provider, stranger.address)
    with pytest.raises(TransactionReverted, match="IdentityPatientNotRegistered"):
        raw(
            chain,
            provider,
            "attesting",
            registry(chain).functions.attest(
                stranger.address, int(chain.now().timestamp()) + DAY, b"\0" * 32
            ),
        )
    with pytest.raises(Exception, match="at most 5 years"):
        identity.attest(chain, provider, stranger.address, expires_in=timedelta(days=6 * 365))


def test_attestation_records_who_attested_whom_and_when_without_personal_data(
    chain, provider, registered_patient
):
    opening = identity.commit(b"passport X1234567, seen at the front desk")
    made = identity.attest(chain, provider, registered_patient.address, timedelta(days=30),
                           opening.commitment)  # fmt: skip
    assert (made.institution, made.attester, made.holds, made.revoked) == (
        provider.address,
        provider.address,
        True,
        False,
    )
    assert made.number == providers.participant(chain, provider.address).number
    assert made.expires_at - made.attested_at == timedelta(days=30)
    assert made.commitment == opening.commitment and opening.opens(made.commitment)
    assert not identity.commit(b"someone else").opens(made.commitment)
    assert identity.attestations_of(chain, registered_patient.address) == [made]


def test_another_institution_cannot_revoke_an_attestation(
    chain, provider, registered_patient, verified_institution, hospital
):
    identity.attest(chain, provider, registered_patient.address)
    verified_institution(hospital, providers.InstitutionKind.HOSPITAL, "St Mary")
    with pytest.raises(PreconditionFailed, match="holds no attestation"):
        identity.revoke(chain, hospital, registered_patient.address)
    with pytest.raises(TransactionReverted, match="IdentityNotAttested"):
        raw(
            chain,
            hospital,
            "revoking",
            registry(chain).functions.revoke(registered_patient.address),
        )
    assert identity.is_attested(chain, registered_patient.address, provider.address)


def test_a_suspended_institutions_attestations_are_void_even_after_reinstatement(
    chain, provider, registered_patient, registrars
):
    identity.attest(chain, provider, registered_patient.address)
    providers.suspend_institution(chain, registrars[0], provider.address, "audit")
    assert not identity.is_attested(chain, registered_patient.address, provider.address)
    providers.approve_institution(chain, registrars[0], provider.address)
    providers.approve_institution(chain, registrars[1], provider.address)
    assert providers.participant(chain, provider.address).status is providers.Status.VERIFIED
    assert not identity.is_attested(chain, registered_patient.address, provider.address)
    identity.attest(chain, provider, registered_patient.address)  # attested again: holds
    assert identity.is_attested(chain, registered_patient.address, provider.address)


def test_an_expired_attestation_no_longer_holds(chain, provider, registered_patient):
    identity.attest(chain, provider, registered_patient.address, timedelta(days=1))
    advance(chain, DAY - 10)
    assert identity.is_attested(chain, registered_patient.address, provider.address)
    advance(chain, 20)
    assert not identity.is_attested(chain, registered_patient.address, provider.address)


# ---------------------------------------------------------------------------- claims


def test_a_claim_is_refused_for_an_unattested_patient_under_a_policy_that_requires_it(
    chain, submit, policy, monkeypatch
):
    assert policy.attestation_required
    with pytest.raises(PreconditionFailed, match="requires an attested patient"):
        submit(("99213", 180))
    # the contract refuses it as well, before any money moves
    monkeypatch.setattr(identity, "is_attested", lambda *args: True)
    with pytest.raises(TransactionReverted, match="IdentityNotAttestedBy"):
        submit(("99213", 180))
    assert claims.get_policy(chain, policy.id).paid == 0


def test_an_attested_patients_claim_settles_then_after_revocation_is_refused(
    chain, submit, provider, policy, registered_patient, monkeypatch
):
    identity.attest(chain, provider, registered_patient.address)
    claim = submit(("99213", 180))
    assert claim.state is claims.ClaimState.APPROVED and claim.paid == 104
    revoked = identity.revoke(chain, provider, registered_patient.address)
    assert revoked.revoked and not revoked.holds and revoked.revoked_at is not None
    with pytest.raises(PreconditionFailed, match="requires an attested patient"):
        submit(("99213", 120))
    monkeypatch.setattr(identity, "is_attested", lambda *args: True)
    with pytest.raises(TransactionReverted, match="IdentityNotAttestedBy"):
        submit(("99213", 120))


def test_an_expired_attestation_is_refused_in_a_claim(
    chain, submit, provider, policy, registered_patient
):
    identity.attest(chain, provider, registered_patient.address, timedelta(days=1))
    advance(chain, 2 * DAY)
    with pytest.raises(PreconditionFailed, match="requires an attested patient"):
        submit(("99213", 180))


def test_a_policy_issued_without_the_requirement_pays_an_unattested_patient(
    chain, store, insurer, provider, registered_patient, payment_consent, visit, claim_body
):
    plain = claims.issue_policy(
        chain, store, insurer, registered_patient.address, coverage=Decimal("0.8"),
        deductible=Decimal(0), annual_limit=Decimal(100), auto_settle_limit=Decimal(100),
        codes=CODES,
    )  # fmt: skip
    claims.fund_policy(chain, insurer, plain.id, Decimal(100))
    assert not plain.attestation_required
    made = claims.submit_claim(
        chain, store, provider, plain.id, claim_body(("99213", 50)), evidence=[visit.id],
        terms=claims.read_terms(chain, store, registered_patient, plain),
    )  # fmt: skip
    assert made.state is claims.ClaimState.APPROVED and made.paid == 40


# ---------------------------------------------------------------------------- gas


def test_gas_an_attestation_under_80k_and_the_claim_check_under_10k_more(
    chain,
    store,
    insurer,
    provider,
    registered_patient,
    policy,
    terms,
    payment_consent,
    visit,
    claim_body,
):
    def attest_gas(signer, patient):
        expiry = int(chain.now().timestamp()) + 365 * DAY
        function = registry(chain).functions.attest(patient, expiry, b"\x01" * 32)
        return raw(chain, signer, "attesting", function).gas_used

    by_institution = attest_gas(provider, registered_patient.address)
    practitioner, other_patient = dev_account(14), dev_account(15)
    providers.add_practitioner(chain, provider, practitioner.address)
    providers.accept_practitioner(chain, practitioner, provider.address)
    providers.register_patient(chain, other_patient)
    by_practitioner = attest_gas(practitioner, other_patient.address)
    # the same kind of claim on two policies, the second of each pair measured (the first pays
    # for first-time slots)
    plain = claims.issue_policy(
        chain, store, insurer, registered_patient.address, coverage=Decimal("0.8"),
        deductible=Decimal(50), annual_limit=Decimal(2_000), auto_settle_limit=Decimal(500),
        codes=CODES,
    )  # fmt: skip
    claims.fund_policy(chain, insurer, plain.id, Decimal(5_000))
    plain_terms = claims.read_terms(chain, store, registered_patient, plain)
    measured = {}
    chosen = (("required", policy.id, terms), ("plain", plain.id, plain_terms))
    for name, policy_id, policy_terms in chosen:
        for i in range(2):
            made = claims.submit_claim(
                chain, store, provider, policy_id, claim_body(("99213", 120 + i)),
                evidence=[visit.id], terms=policy_terms,
            )  # fmt: skip
            assert made.state is claims.ClaimState.APPROVED
        measured[name] = claims.claim_history(chain, made.id)[0].gas_used
    check = measured["required"] - measured["plain"]
    print(
        f"\nattest: {by_institution} gas by the institution, {by_practitioner} by a "
        f"practitioner; claim {measured['required']} with the requirement, "
        f"{measured['plain']} without: the check costs {check}"
    )
    assert by_institution <= 80_000 and by_practitioner <= 80_000
    # Issue #18 asks for at most 5,000: not met. A separate registry costs a cold account
    # (2,600) and a cold slot (2,100) before any logic; the rest is two calls' overhead and the
    # suspension check (see the report). Held here to 10,000 so that a regression shows.
    assert 0 < check <= 10_000


# ---------------------------------------------------------------------------- CLI


def one_line_error(outcome, message: str) -> None:
    assert outcome.exit_code == 1, (outcome.stdout, outcome.stderr)
    assert message in outcome.stderr, outcome.stderr
    assert len(outcome.stderr.strip().splitlines()) == 1, outcome.stderr


def test_cli_attests_shows_and_revokes_keeping_the_commitments_opening(
    chain, medledger, tmp_path, provider, registered_patient
):
    checked = tmp_path / "id-check.txt"
    checked.write_bytes(b"passport X1234567, photo matched, 2026-12-07")
    patient = registered_patient.address
    made = medledger("patient", "attest", "--patient", patient, "--expires", "30d",
                     "--commitment-of", str(checked), "--account", "dev:4", "--json")  # fmt: skip
    assert made.exit_code == 0, made.stderr
    opening = json.loads((tmp_path / "id-check.txt.opening.json").read_text())
    assert made.json()["commitment"] == opening["commitment"]
    assert identity.commit(checked.read_bytes(), bytes.fromhex(opening["salt"][2:])).opens(
        bytes.fromhex(opening["commitment"][2:])
    )
    assert "X1234567" not in made.stdout  # only the commitment is published
    shown = medledger("patient", "show", patient, "--account", "dev:9")
    assert shown.exit_code == 0, shown.stderr
    assert f"attested by {provider.address}" in shown.stdout and ": holds" in shown.stdout
    revoked = medledger("patient", "revoke-attestation", "--patient", patient, "--account", "dev:4")
    assert revoked.exit_code == 0, revoked.stderr
    assert ": revoked" in revoked.stdout
    listed = medledger("patient", "show", patient, "--json", "--account", "dev:9").json()
    assert [(a["institution"], a["revoked"], a["holds"]) for a in listed["attestations"]] == [
        (provider.address, True, False)
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--account", "dev:9"], "not a verified care institution"),
        (["--account", "dev:4", "--expires", "6000d"], "longer than the maximum"),
        (["--account", "dev:4", "--expires", "soon"], "is not a duration"),
        (["--account", "dev:4", "--opening", "x.json"], "--opening"),
    ],
    ids=["stranger", "too-long", "not-a-duration", "opening-without-document"],
)
def test_cli_attest_refuses_bad_input_in_one_line(medledger, provider, registered_patient, args,
                                                  message):  # fmt: skip
    one_line_error(
        medledger("patient", "attest", "--patient", registered_patient.address, *args), message
    )


def test_cli_policy_issue_requires_attested_patients(medledger, insurer, registered_patient):
    issued = medledger(
        "policy", "issue", "--patient", registered_patient.address, "--limit", "100",
        "--code", f"{CODES[0].system}|{CODES[0].code}", "--require-attested", "--account", "dev:10",
    )  # fmt: skip
    assert issued.exit_code == 0, issued.stderr
    assert "pays only patients attested" in issued.stdout


def test_the_patients_audit_shows_who_attested_and_revoked(
    chain, medledger, provider, registered_patient
):
    identity.attest(chain, provider, registered_patient.address, timedelta(days=10))
    identity.revoke(chain, provider, registered_patient.address)
    trail = medledger("audit", "--patient", registered_patient.address, "--format", "json")
    assert trail.exit_code == 0, trail.stderr
    rows = [(r["event"], r["actor"]) for r in trail.json() if "identity" in r["event"]]
    assert rows == [
        ("identity attested", provider.address),
        ("identity attestation revoked", provider.address),
    ]
