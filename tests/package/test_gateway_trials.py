"""A research sponsor's Bulk Data export of a study through a site's gateway
(``GET /Group/{study}/$export``): only the data of participants whose consent lets the sponsor
read, as the chain's ``canRead`` says; the study listed as a ``ResearchStudy``.

The study and its roles are test_trials.py's: the hospital (dev:3) is a site and runs the
gateway, Northwind (dev:13) sponsors; participants are fresh pseudonymous keys.
"""

from __future__ import annotations

import json

import gateway_harness
import pytest
import test_trials
from test_gateway_server import assert_valid, ok, refused

from medledger import trials

store = test_trials.store
hospital_site = test_trials.hospital_site
clinic_site = test_trials.clinic_site
monitor = test_trials.monitor
study = test_trials.study
enrol = test_trials.enrol
second_participant = test_trials.second_participant
observation = test_trials.observation


@pytest.fixture
def site_gateway(env, hospital_site):
    running = gateway_harness.start(env, "dev:3")
    yield running
    running.stop()


def test_a_sponsor_exports_only_what_the_participants_consent_lets_it_read(
    site_gateway, chain, store, study, sponsor, hospital_site, enrol, participant,
    second_participant, clinic_site,
):  # fmt: skip
    enrol(participant)
    enrol(second_participant, sponsor_reads=False)
    for who, name in ((participant, "shared"), (second_participant, "kept")):
        trials.submit_data(chain, store, hospital_site, study.id, who.address, "baseline",
                           [observation(name)])  # fmt: skip
    with site_gateway.client(
        site_gateway.sign_in(sponsor, "user/Group.rs user/ResearchStudy.rs")
    ) as http:
        listed = ok(http.get("ResearchStudy"))
        assert str(study.id) in {e["resource"]["id"] for e in listed["entry"]}
        kicked = http.get(f"Group/{study.id}/$export")
        assert kicked.status_code == 202, kicked.text
        manifest = http.get(kicked.headers["content-location"]).json()
        (output,) = manifest["output"]
        lines = [json.loads(x) for x in http.get(output["url"]).text.splitlines() if x]
        for resource in lines:
            assert_valid(resource)
        assert [r["id"] for r in lines] == ["shared"]
        refused(http.get("Group/9999/$export"), 404)
    with site_gateway.client(site_gateway.sign_in(clinic_site, "user/Group.rs")) as other:
        refused(other.get(f"Group/{study.id}/$export"), 403, "none of study")
