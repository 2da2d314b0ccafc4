"""The input rules behind the bad-input catalogue, on their own: addresses, durations, which
files of a folder ``anchor`` reads (and says it skipped), a Claim's arithmetic, signed
deadlines."""

from __future__ import annotations

import json
import os
import re
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

from medledger import fhir
from medledger.addresses import parse_address
from medledger.claims.amounts import claim_amount
from medledger.durations import MAX_DURATION, parse_duration
from medledger.errors import (
    ConfigurationError,
    FhirStructureError,
    InvalidAddress,
    InvalidDuration,
)

if TYPE_CHECKING:
    from pathlib import Path

EIP55 = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"  # the example of EIP-55


@pytest.mark.parametrize("text", [EIP55, EIP55.lower(), "0x" + EIP55[2:].upper(), f"  {EIP55} "],
                         ids=["checksummed", "lower", "upper", "spaces"])  # fmt: skip
def test_an_address_in_one_case_or_checksummed_is_accepted(text: str) -> None:
    assert parse_address(text) == EIP55


@pytest.mark.parametrize("text", [EIP55[:-1] + "D", EIP55[2:], "0x" + EIP55[3:], "0xZZZ", ""],
                         ids=["checksum", "no-0x", "39-digits", "not-hex", "empty"])  # fmt: skip
def test_any_other_address_is_refused_in_one_line(text: str) -> None:
    with pytest.raises(InvalidAddress) as caught:
        parse_address(text, "--patient")
    assert str(caught.value).startswith("--patient ") and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30d", timedelta(days=30)), ("12h", timedelta(hours=12)), ("1.5w", timedelta(days=10.5)),
     ("3653d", MAX_DURATION), ("90M", timedelta(minutes=90))],
)  # fmt: skip
def test_durations_up_to_ten_years_are_read(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["3654d", "99999w", "100000000000d", "0d", "-1h", "1e400d",
                                  "inf", "30", "d", ""])  # fmt: skip
def test_other_durations_are_refused(text: str) -> None:
    with pytest.raises(InvalidDuration):
        parse_duration(text)


def test_a_duration_option_can_have_a_tighter_maximum() -> None:
    with pytest.raises(InvalidDuration, match="maximum of 24 hours"):
        parse_duration("25h", timedelta(hours=24), "--duration")


# --- which files anchor reads -------------------------------------------------------------------


def test_a_folder_gives_its_json_files_and_says_what_it_skipped(tmp_path: Path) -> None:
    body = json.dumps({"resourceType": "Basic", "id": "b1"})
    (tmp_path / "a.json").write_text(body)
    (tmp_path / "B.JSON").write_text(body)
    (tmp_path / "notes.txt").write_text("call the lab")
    (tmp_path / ".hidden.json").write_text(body)
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "x.json").write_text(body)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.json").write_text(body)
    os.symlink(tmp_path / "a.json", tmp_path / "link.json")
    files, notices = fhir.select_files([tmp_path, tmp_path / "a.json", tmp_path / "sub"])
    assert [f.relative_to(tmp_path).as_posix() for f in files] == ["B.JSON", "a.json", "sub/c.json"]
    said = "\n".join(notices)
    assert len(notices) == 4  # one line per kind
    assert "2 hidden files or folders" in said and "1 symbolic link" in said
    assert "1 file not ending in .json" in said and "notes.txt" in said
    assert "2 files named more than once (read once)" in said


def test_a_named_symbolic_link_is_followed(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("{}")
    os.symlink(tmp_path / "a.json", tmp_path / "link.json")
    assert fhir.select_files([tmp_path / "link.json"]) == ([tmp_path / "link.json"], [])


@pytest.mark.parametrize("content", [None, "notes.txt", ".hidden.json"], ids=["empty", "txt",
                                                                            "hidden"])  # fmt: skip
def test_a_folder_without_json_is_refused(tmp_path: Path, content: str | None) -> None:
    if content:
        (tmp_path / content).write_text("{}")
    with pytest.raises(ConfigurationError, match=r"holds no \.json file"):
        fhir.select_files([tmp_path])


def test_anchor_says_what_it_skipped_and_reads_a_file_named_twice_once(
    medledger, verified_institution, hospital, registered_patient, care, tmp_path: Path
) -> None:
    care(registered_patient, verified_institution(hospital))
    resource = {"resourceType": "Observation", "id": "o1", "status": "final",
                "code": {"text": "pulse"}}  # fmt: skip
    (tmp_path / "O.JSON").write_text(json.dumps(resource))
    (tmp_path / "notes.txt").write_text("x")
    done = medledger("anchor", str(tmp_path), str(tmp_path / "O.JSON"), "--patient",
                     registered_patient.address, "--account", "dev:3", "--json")  # fmt: skip
    assert done.exit_code == 0, done.stderr
    assert len(done.json()) == 1  # once, not twice
    notes = [line for line in done.stderr.splitlines() if line.startswith("note: ")]
    assert len(notes) == 2 and "notes.txt" in notes[0] + notes[1]


# --- a Claim's money ----------------------------------------------------------------------------


def _claim(*items: dict, total: object = None) -> dict:
    claim: dict = {"resourceType": "Claim", "item": [dict(sequence=n + 1, **i)
                                                     for n, i in enumerate(items)]}  # fmt: skip
    if total is not None:
        claim["total"] = {"value": total, "currency": "USD"}
    return claim


def _read(claim: dict):
    return claim_amount(json.loads(json.dumps(claim), parse_float=Decimal))


@pytest.mark.parametrize(
    ("claim", "total"),
    [
        (_claim({"net": {"value": 60}}, {"net": {"value": 40}}, total=100), Decimal(100)),
        (_claim({"net": {"value": 60}}), Decimal(60)),
        (_claim({"quantity": {"value": 3}, "unitPrice": {"value": 10}, "factor": 0.5}),
         Decimal("15")),
        (_claim({}, {"net": {"value": 140.52}}, total=265.52), Decimal("265.52")),  # Synthea
        (_claim({"net": {"value": 410.20000000000005}}), Decimal("410.20")),  # float noise
    ],
    ids=["sum", "no-total", "price-times-quantity", "unpriced-line", "float-noise"],
)  # fmt: skip
def test_a_claims_amount_is_its_arithmetic(claim: dict, total: Decimal) -> None:
    assert _read(claim).total == total


@pytest.mark.parametrize(
    ("claim", "says"),
    [
        (_claim({"net": {"value": 999}}, total=100), "add up to 999.00 USD but the total is 100"),
        (_claim({}, {"net": {"value": 999}}, total=100), "more than the total of 100"),
        (_claim({"net": {"value": "100"}}), "is not a JSON number"),
        (_claim({"net": {"value": 12.3456789}}), "more decimals than USD allows (2)"),
        (_claim({"net": {"value": 30}, "quantity": {"value": 2}, "unitPrice": {"value": 10}}),
         "quantity * unitPrice * factor is 20.00"),
        (_claim({"net": {"value": 1, "currency": "EUR"}}, total=1), "mixes currencies"),
        (_claim({"net": {"value": 1, "currency": "euro"}}), "ISO 4217"),
        (_claim({"net": {"value": -5}}), "more than zero"),
        (_claim({"net": {"value": True}}), "is not a JSON number"),
    ],
    ids=["nets-vs-total", "priced-above-total", "string", "precision", "arithmetic",
         "two-currencies", "bad-currency", "negative", "boolean"],
)  # fmt: skip
def test_a_claim_whose_money_does_not_add_up_is_refused(claim: dict, says: str) -> None:
    with pytest.raises(FhirStructureError, match=re.escape(says)):
        _read(claim)


# --- signed deadlines ---------------------------------------------------------------------------


def test_a_signed_care_relationship_past_its_deadline_is_refused_before_sending(
    chain, verified_institution, hospital, registered_patient
) -> None:
    from medledger import providers
    from medledger.errors import SignatureExpired

    verified_institution(hospital)
    signed = providers.sign_care(
        chain, registered_patient, registered_patient.address, hospital.address, None, 60
    )
    chain.w3.provider.make_request("evm_increaseTime", [120])
    chain.w3.provider.make_request("evm_mine", [])
    block = chain.w3.eth.block_number
    expired = r"signed care relationship expired at .*Z"
    with pytest.raises(SignatureExpired, match=expired) as caught:
        providers.submit_signed_care(chain, hospital, signed)
    assert caught.value.deadline < chain.now()
    assert chain.w3.eth.block_number == block  # nothing sent
