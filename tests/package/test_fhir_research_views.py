"""Scenarios for studies and participations as the FHIR server serves them: every
``ResearchStudy`` with its id, ``ResearchSubject`` searched by study and by participant (the
pseudonymous study address), and read by id.

The roles and the study are test_trials.py's fixtures (imported): the sponsor (dev:13), the
hospital and clinic sites, a public-protocol study; participants are fresh keys. Every resource
is checked with the package's validator (``fhir.resources`` R4B models).
"""

from __future__ import annotations

import pytest
import test_trials

from medledger import fhir, trials
from medledger.errors import ConfigurationError, PreconditionFailed, StudyNotFound
from medledger.fhir._validate import problems_of

# test_trials.py's fixtures, used here as they are
store = test_trials.store
hospital_site = test_trials.hospital_site
clinic_site = test_trials.clinic_site
monitor = test_trials.monitor
study = test_trials.study
enrol = test_trials.enrol
second_participant = test_trials.second_participant


def valid(resource: dict) -> dict:
    """The resource, after the package's validator found no problem in it."""
    assert problems_of(resource, resource["resourceType"], None) == []
    return resource


def test_studies_are_served_as_valid_research_studies_under_their_ids(
    chain, store, study, sponsor, hospital_site
):
    later = trials.register_study(
        chain, store, sponsor, test_trials.protocol(title="A second study"),
        [hospital_site.address], encrypt=True,
    )  # fmt: skip
    first, second = (valid(r) for r in trials.study_resources(chain, store))
    assert (first["id"], second["id"]) == (str(study.id), str(later.id))  # not the protocol's id
    assert first["title"].startswith("AF-ABLATE") and "title" not in second  # sealed protocol
    assert fhir.study_ref_of(first).study_id == study.id
    (one,) = trials.study_resources(chain, store, later.id, reader=hospital_site)
    assert valid(one)["title"] == "A second study"  # a site opens the sealed protocol
    with pytest.raises(StudyNotFound, match="study 99 is not registered"):
        trials.study_resources(chain, store, 99)


def test_subjects_are_found_by_study_and_by_participant(
    chain, store, study, sponsor, hospital_site, enrol, participant, second_participant
):
    enrol(participant)
    enrol(second_participant)
    other = trials.register_study(
        chain, store, sponsor, test_trials.protocol(), [hospital_site.address]
    )
    document = trials.sign_consent(chain, participant, other.id, hospital_site.address)
    trials.submit_consent(chain, hospital_site, document)

    in_study = [valid(r) for r in trials.subject_resources(chain, study=study.id)]
    assert [r["id"] for r in in_study] == [
        f"{study.id}-{participant.address}", f"{study.id}-{second_participant.address}",
    ]  # fmt: skip
    assert all(r["study"]["reference"] == f"ResearchStudy/{study.id}" for r in in_study)
    theirs = trials.subject_resources(chain, participant=participant.address)
    assert [fhir.study_ref_of(r).study_id for r in theirs] == [study.id, other.id]
    (both,) = trials.subject_resources(chain, study=other.id, participant=participant.address)
    assert both == theirs[1]
    assert len(trials.subject_resources(chain)) == 3
    assert trials.subject_resources(chain, study=other.id, participant=sponsor.address) == []


def test_a_subject_is_read_by_its_id_and_names_only_the_study_address(
    chain, study, enrol, participant
):
    enrol(participant)
    (found,) = trials.subject_resources(chain, participant=participant.address)
    assert trials.subject_resource(chain, found["id"]) == found
    individual = found["individual"]
    assert "reference" not in individual  # a study address is not a record patient
    assert individual["identifier"]["value"] == participant.address
    assert found["status"] == "on-study"


@pytest.mark.parametrize(
    ("subject_id", "error", "message"),
    [
        ("7", ConfigurationError, "is not a ResearchSubject id"),
        ("1-0x1234", ConfigurationError, "is not a ResearchSubject id"),
        ("99-0x" + "11" * 20, StudyNotFound, "study 99 is not registered"),
        ("{study}-0x" + "11" * 20, PreconditionFailed, "is not enrolled in study"),
    ],
    ids=["no-participant", "short-address", "unknown-study", "never-enrolled"],
)
def test_a_subject_id_that_names_no_participation_is_refused(
    chain, study, subject_id, error, message
):
    with pytest.raises(error, match=message):
        trials.subject_resource(chain, subject_id.replace("{study}", str(study.id)))
