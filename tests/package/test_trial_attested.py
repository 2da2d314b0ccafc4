# ruff: noqa: F811  (test_trials's fixtures, imported, are parameters here)
"""A study that requires attested participants (issue #18, item 2), through the package and the
CLI: the site that identified a person (it attests their patient address) attests the
pseudonymous study account their identity link ties to it, committing only to the link; the
sponsor requires attestation before the first enrolment; a participant the enrolling site does
not attest is refused before anything is sent; anyone holding the link and the site's opening
proves why the study account is attested.

Roles (``test_trials`` and ``conftest``): the sponsor is dev:13, the sites are the hospital
(dev:3) and the clinic (dev:4), the person's record address is the registered patient dev:5,
participants are fresh keys with no ETH and no role.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from test_trials import (  # noqa: F401  (fixtures)
    clinic_site,
    hospital_site,
    monitor,
    one_line_error,
    second_participant,
    store,
    study,
)

from medledger import identity, providers, trials
from medledger.accounts import dev_account
from medledger.errors import ConfigurationError, IntegrityError, PreconditionFailed
from medledger.identity import links

NOT_ATTESTED = "requires participants attested by the enrolling site"


@pytest.fixture
def link(chain, study, participant, registered_patient):
    """The participant's identity link: their study account and their record address (dev:5)
    are one person's."""
    return trials.link_proof(chain, study.id, participant, registered_patient)


@pytest.fixture
def identified(chain, hospital_site, registered_patient):
    """The hospital identified the person: it attests their patient address."""
    return identity.attest(chain, hospital_site, registered_patient.address)


def enrol(chain, study_id, participant, site):
    """The participant signs consent at ``site``, which submits it."""
    document = trials.sign_consent(chain, participant, study_id, site.address)
    return trials.submit_consent(chain, site, document)


def refused_before_sending(chain, error, message, action):
    """``action`` raises ``error`` matching ``message`` and no block is mined."""
    before = chain.w3.eth.block_number
    with pytest.raises(error, match=message):
        action()
    assert chain.w3.eth.block_number == before


def signed_link(chain_id, registry, study_id, participant, record):
    """An identity link signed by both keys over the statement for any chain and registry."""
    text = links._link_statement(chain_id, registry, study_id, participant.address, record.address)
    message = encode_defunct(text=text)
    return {
        "kind": links.LINK_KIND, "statement": text, "chain_id": chain_id,
        "trial_registry": registry, "study": study_id, "participant": participant.address,
        "record_address": record.address,
        "participant_signature": "0x" + bytes(
            Account.sign_message(message, participant.key).signature).hex(),
        "record_signature": "0x" + bytes(
            Account.sign_message(message, record.key).signature).hex(),
    }  # fmt: skip


# ---------------------------------------------------------------------------- the full flow


def test_a_participant_the_site_attested_enrols_and_the_link_is_provable_on_demand(
    chain, study, sponsor, hospital_site, participant, registered_patient, link, identified
):
    made, opening = identity.attest_study_account(chain, hospital_site, link, timedelta(days=90))
    assert (made.patient, made.institution, made.holds) == (
        participant.address,
        hospital_site.address,
        True,
    )
    assert made.expires_at - made.attested_at == timedelta(days=90)
    # on chain only a salted commitment: no link between the two addresses
    assert made.commitment == opening.commitment and opening.opens(made.commitment)
    assert registered_patient.address.lower()[2:] not in json.dumps(made.as_dict()).lower()
    # a pseudonym's attestation reads like a patient's, though it has no registration
    assert providers.participant(chain, participant.address).role is providers.Role.NONE
    assert identity.attestations_of(chain, participant.address) == [made]
    assert identity.is_attested(chain, participant.address, hospital_site.address)

    required = trials.require_attested_participants(chain, sponsor, study.id)
    assert required.attested_participants
    assert ("attested participants", sponsor.address) in [
        (s.event, s.actor) for s in trials.history(chain, study.id)
    ]
    standing = enrol(chain, study.id, participant, hospital_site)
    assert (standing.site, standing.consented_version) == (hospital_site.address, 1)
    assert identity.check_study_link(chain, link, opening) == made


# ---------------------------------------------------------------------------- enrolment refused


@pytest.mark.parametrize("attested_by", ["nobody", "the-clinic", "revoked"])
def test_a_participant_the_enrolling_site_does_not_attest_is_refused_before_sending(
    chain, study, sponsor, hospital_site, clinic_site, participant, registered_patient, link,
    identified, attested_by,
):  # fmt: skip
    if attested_by == "the-clinic":  # another site identified the person and attests them
        identity.attest(chain, clinic_site, registered_patient.address)
        identity.attest_study_account(chain, clinic_site, link)
    if attested_by == "revoked":
        identity.attest_study_account(chain, hospital_site, link)
        identity.revoke(chain, hospital_site, participant.address)
    trials.require_attested_participants(chain, sponsor, study.id)
    document = trials.sign_consent(chain, participant, study.id, hospital_site.address)
    refused_before_sending(
        chain, PreconditionFailed,
        f"study {study.id} {NOT_ATTESTED}: {hospital_site.address} has not attested "
        f"{participant.address} \\(medledger trial attest-participant --link FILE\\)",
        lambda: trials.submit_consent(chain, hospital_site, document),
    )  # fmt: skip
    assert trials.get_study(chain, study.id).participants == 0


def test_without_the_rule_an_unattested_participant_enrols(chain, study, hospital_site,
                                                           participant):  # fmt: skip
    assert not trials.get_study(chain, study.id).attested_participants
    assert enrol(chain, study.id, participant, hospital_site).consents == 1


def test_the_rule_is_refused_once_someone_enrolled_and_by_anyone_but_the_sponsor(
    chain, study, sponsor, hospital_site, participant
):
    refused_before_sending(
        chain, PreconditionFailed, "does not act for",
        lambda: trials.require_attested_participants(chain, hospital_site, study.id),
    )  # fmt: skip
    enrol(chain, study.id, participant, hospital_site)
    refused_before_sending(
        chain, PreconditionFailed, "only before the first enrolment",
        lambda: trials.require_attested_participants(chain, sponsor, study.id),
    )  # fmt: skip


def test_the_rule_is_set_once(chain, study, sponsor):
    trials.require_attested_participants(chain, sponsor, study.id)
    refused_before_sending(
        chain, PreconditionFailed, "already requires attested participants",
        lambda: trials.require_attested_participants(chain, sponsor, study.id),
    )  # fmt: skip


# ---------------------------------------------------------------------------- attesting refused


@pytest.mark.parametrize("record_attested", ["never", "by-the-clinic-only", "revoked"])
def test_a_link_whose_record_address_the_site_does_not_attest_now_is_refused(
    chain, hospital_site, clinic_site, registered_patient, link, record_attested
):
    if record_attested == "by-the-clinic-only":
        identity.attest(chain, clinic_site, registered_patient.address)
    if record_attested == "revoked":
        identity.attest(chain, hospital_site, registered_patient.address)
        identity.revoke(chain, hospital_site, registered_patient.address)
    refused_before_sending(
        chain, PreconditionFailed,
        f"{hospital_site.address} does not attest {registered_patient.address}, the link's "
        "record address, now",
        lambda: identity.attest_study_account(chain, hospital_site, link),
    )  # fmt: skip


def forged(chain, study, participant, patient):
    proof = trials.link_proof(chain, study.id, participant, patient)
    return {**proof, "record_address": dev_account(8).address}


def other_registry(chain, study, participant, patient):
    return signed_link(chain.chain_id, dev_account(8).address, study.id, participant, patient)


def other_chain(chain, study, participant, patient):
    registry = trials.trial_registry(chain).address
    return signed_link(chain.chain_id + 1, registry, study.id, participant, patient)


def institution_as_study_account(chain, study, participant, patient):
    """The 'study account' is the clinic's (dev:4), which has a role: not a pseudonym."""
    return trials.link_proof(chain, study.id, dev_account(4), patient)


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (forged, PreconditionFailed, "not a valid identity link"),
        (other_registry, PreconditionFailed, "not this deployment's"),
        (other_chain, PreconditionFailed, "not this deployment's"),
        (institution_as_study_account, PreconditionFailed, "is not a pseudonymous study account"),
    ],
    ids=["forged", "other-registry", "other-chain", "study-account-has-a-role"],
)
def test_a_bad_link_is_refused_before_sending(
    chain, study, hospital_site, participant, registered_patient, identified, make, error,
    message,
):  # fmt: skip
    document = make(chain, study, participant, registered_patient)
    refused_before_sending(
        chain, error, message,
        lambda: identity.attest_study_account(chain, hospital_site, document),
    )  # fmt: skip


def test_only_a_care_institution_attests_a_study_account_and_for_at_most_five_years(
    chain, sponsor, hospital_site, link, identified
):
    refused_before_sending(
        chain, PreconditionFailed, "not a verified care institution",
        lambda: identity.attest_study_account(chain, sponsor, link),
    )  # fmt: skip
    refused_before_sending(
        chain, ConfigurationError, "at most 5 years",
        lambda: identity.attest_study_account(chain, hospital_site, link, timedelta(days=1900)),
    )  # fmt: skip


# ---------------------------------------------------------------------------- check-link


def test_a_forged_link_or_a_wrong_opening_fails_the_check(
    chain, study, hospital_site, participant, registered_patient, link, identified
):
    made, opening = identity.attest_study_account(chain, hospital_site, link)
    altered = {**link, "record_address": dev_account(8).address}
    resigned = signed_link(chain.chain_id, link["trial_registry"], study.id, participant,
                           dev_account(8))  # fmt: skip
    fresh = identity.commit(links.canonical_link(link))  # the same link, another salt
    cases = [
        (altered, opening, "not a valid identity link"),
        (resigned, opening, "the opening is not of this link"),
        (link, fresh, "opens no institution's latest attestation"),
    ]
    for document, opened, message in cases:
        with pytest.raises(IntegrityError, match=message):
            identity.check_study_link(chain, document, opened)
    assert identity.check_study_link(chain, link, opening) == made


def test_the_check_needs_the_site_to_have_attested_the_record_address(
    chain, study, hospital_site, clinic_site, participant, registered_patient, link, identified
):
    """A study account attested by a site that never attested the record address proves
    nothing: made by the contract alone (the package refuses to send it)."""
    opening = identity.commit(links.canonical_link(link))
    until = int((chain.now() + timedelta(days=30)).timestamp())
    chain.transact("attesting", clinic_site, identity.model.registry(chain).functions
                   .attestPseudonym(participant.address, until, opening.commitment))  # fmt: skip
    with pytest.raises(IntegrityError, match=f"never attested {registered_patient.address}"):
        identity.check_study_link(chain, link, opening)


def test_a_revoked_study_account_is_still_proven_but_no_longer_holds(
    chain, hospital_site, participant, link, identified
):
    _made, opening = identity.attest_study_account(chain, hospital_site, link)
    identity.revoke(chain, hospital_site, participant.address)
    proven = identity.check_study_link(chain, link, opening)
    assert (proven.revoked, proven.holds) == (True, False)


# ---------------------------------------------------------------------------- the CLI


def test_cli_runs_the_attested_enrolment_and_proves_the_link(
    chain, medledger, tmp_path, monkeypatch, study, sponsor, hospital_site, participant,
    second_participant, registered_patient,
):  # fmt: skip
    monkeypatch.setenv("P1_KEY", "0x" + bytes(participant.key).hex())
    monkeypatch.setenv("P2_KEY", "0x" + bytes(second_participant.key).hex())
    study_id, site = str(study.id), hospital_site.address
    link = tmp_path / "link.json"
    assert medledger("trial", "link-proof", study_id, "--record-account", "dev:5",
                     "--out", str(link), "--account", "env:P1_KEY").exit_code == 0  # fmt: skip
    one_line_error(  # the site has not identified the person yet
        medledger("trial", "attest-participant", "--link", str(link), "--account", "dev:3"),
        "medledger patient attest --patient " + registered_patient.address,
    )
    assert medledger("patient", "attest", "--patient", registered_patient.address,
                     "--account", "dev:3").exit_code == 0  # fmt: skip
    attested = medledger("trial", "attest-participant", "--link", str(link), "--expires", "90d",
                         "--account", "dev:3")  # fmt: skip
    assert attested.exit_code == 0, attested.stderr
    assert len(attested.stdout.strip().splitlines()) == 1
    assert attested.stdout.startswith(f"{participant.address} attested by {site} until ")
    opening = tmp_path / "link.json.opening.json"
    assert opening.stat().st_mode & 0o777 == 0o600  # the opening links the two: kept private
    assert json.loads(opening.read_text())["study_account"] == participant.address
    shown = medledger("patient", "show", participant.address)  # a pseudonym: who attested it
    assert shown.exit_code == 0, shown.stderr
    assert shown.stdout.splitlines()[0].endswith("a pseudonymous account")
    assert f"{participant.address} attested by {site}" in shown.stdout

    required = medledger("trial", "require-attested", study_id, "--account", "dev:13")
    assert required.exit_code == 0, required.stderr
    shown = medledger("trial", "show", study_id)
    assert "each attests the participants it enrols" in shown.stdout
    assert "attested participants" in shown.stdout  # the step in the history

    for key, enrols in (("P1_KEY", True), ("P2_KEY", False)):
        signed = tmp_path / f"consent-{key}.json"
        assert medledger("trial", "consent", study_id, "--site", site, "--sign-only", "--out",
                         str(signed), "--account", f"env:{key}").exit_code == 0  # fmt: skip
        before = chain.w3.eth.block_number
        submitted = medledger("trial", "consent", "--submit", str(signed), "--account", "dev:3")
        if enrols:
            assert submitted.exit_code == 0, submitted.stderr
        else:
            one_line_error(submitted, f"{site} has not attested {second_participant.address}")
            assert chain.w3.eth.block_number == before

    checked = medledger("trial", "check-link", "--link", str(link), "--opening", str(opening),
                        "--account", "dev:9")  # fmt: skip
    assert checked.exit_code == 0, checked.stderr
    assert checked.stdout.strip() == (
        f"proven: {site} attested {participant.address} for the person it identified behind "
        "the link's record address (the attestation holds)"
    )
    revoked = medledger("patient", "revoke-attestation", "--patient", participant.address,
                        "--account", "dev:3")  # fmt: skip
    assert revoked.exit_code == 0 and ": revoked" in revoked.stdout, revoked.stderr
    checked = medledger("trial", "check-link", "--link", str(link), "--opening", str(opening))
    assert checked.stdout.strip().endswith("(the attestation no longer holds)"), checked.stderr
    wrong = tmp_path / "wrong.opening.json"
    wrong.write_text(json.dumps(identity.commit(b"another document").as_dict()))
    one_line_error(medledger("trial", "check-link", "--link", str(link), "--opening", str(wrong)),
                   "the opening is not of this link")  # fmt: skip
    wrong.write_text("{}")
    one_line_error(medledger("trial", "check-link", "--link", str(link), "--opening", str(wrong)),
                   "is not a commitment's opening")  # fmt: skip
    one_line_error(medledger("trial", "require-attested", study_id, "--account", "dev:13"),
                   "already requires attested participants")  # fmt: skip


def test_cli_refuses_the_rule_after_an_enrolment_in_one_line(
    chain, medledger, study, hospital_site, participant
):
    enrol(chain, study.id, participant, hospital_site)
    before = chain.w3.eth.block_number
    one_line_error(
        medledger("trial", "require-attested", str(study.id), "--account", "dev:13"),
        f"study {study.id} has enrolled participants since",
    )
    assert chain.w3.eth.block_number == before


# ---------------------------------------------------------------------------- the audit


def test_the_audit_re_checks_each_enrolment_against_the_identity_events(
    chain, store, study, sponsor, hospital_site, participant, second_participant, link,
    identified,
):  # fmt: skip
    """The audit passes a study whose enrolments were attested, and names an enrolment whose
    site had not attested (or had revoked) the account at that moment. The chain refuses such
    an enrolment, so the bad ones are the real consent given another participant or moved in
    time, checked against the real identity events."""
    from dataclasses import replace

    from medledger.chain import events
    from medledger.trials.attested_enrolments import RULE, check_attested_enrolments
    from medledger.trials.model import Check

    identity.attest_study_account(chain, hospital_site, link)
    trials.require_attested_participants(chain, sponsor, study.id)
    enrol(chain, study.id, participant, hospital_site)
    report = trials.audit(chain, store, study.id)
    assert report.ok, report.violations
    (attested,) = [c for c in report.checks if c.rule == RULE]
    assert attested.checked == 1

    rule = events.logs(chain, "TrialRegistry", "ParticipantAttestationRequired",
                       {"studyId": study.id})  # fmt: skip
    (real,) = trials.recorded_consents(chain, study.id, participant.address)
    identity.revoke(chain, hospital_site, participant.address)
    chain.w3.provider.make_request("evm_mine", [])
    after_revocation = chain.w3.eth.block_number
    cases = {
        "never attested the study account": replace(real, participant=second_participant.address),
        "had revoked its attestation": replace(real, block=after_revocation, log_index=0),
    }
    for problem, consent in cases.items():
        check = Check(RULE)
        check_attested_enrolments(chain, rule, [consent], check)
        assert check.checked == 1 and len(check.violations) == 1, problem
        assert problem in check.violations[0], (problem, check.violations)
    before_the_rule = Check(RULE)
    check_attested_enrolments(chain, rule, [replace(real, block=1, log_index=0)], before_the_rule)
    assert before_the_rule.checked == 0 and before_the_rule.ok
