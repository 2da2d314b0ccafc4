"""The bad-input catalogue (used by ``test_bad_input.py``): one row per way a person can get a
command wrong, with a phrase the one-line error must contain.

A row is ``(id, argv, phrase)``. In ``argv``, ``{patient}``, ``{hospital}`` and ``{record}``
stand for the world's patient, hospital and anchored record, ``{data}`` for the folder of bad
files (``bad_input_files``) and ``{tmp}`` for the test's own temporary folder.
"""

from __future__ import annotations

import json
from pathlib import Path

# --- addresses -----------------------------------------------------------------------------------

NOT_HEX = "0xZZZ"
TOO_SHORT = "0xabc"
NO_PREFIX = "5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"
BAD_CHECKSUM = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAfd"  # one digit of EIP-55's example
TOO_LONG = "0x" + "ab" * 21
FULL_WIDTH = "0x" + "\uff41" * 40  # unicode letters that look like hex
EMPTY = ""

_ADDRESS_FORMS = [
    (NOT_HEX, "0x and 40 hex digits"),
    (TOO_SHORT, "3 hex digits, not 40"),
    (NO_PREFIX, "must start with 0x"),
    (BAD_CHECKSUM, "EIP-55 checksum is wrong"),
    (TOO_LONG, "42 hex digits"),
    (FULL_WIDTH, "0x and 40 hex digits"),
    (EMPTY, "it is empty"),
]

# every place a command takes an address: argv with ADDR where the bad address goes
_ADDRESS_PLACES = [
    ("anchor", ["anchor", "{data}/observation.json", "--patient", "ADDR"]),
    ("verify", ["verify", "--patient", "ADDR"]),
    ("grant", ["grant", "ADDR"]),
    ("grant-patient", ["grant", "{hospital}", "--patient", "ADDR"]),
    ("revoke", ["revoke", "ADDR"]),
    ("revoke-patient", ["revoke", "{hospital}", "--patient", "ADDR"]),
    ("delegate", ["delegate", "ADDR"]),
    ("emergency-access", ["emergency-access", "ADDR", "--reason", "R00"]),
    ("close-emergency", ["close-emergency-access", "ADDR"]),
    ("close-emergency-patient", ["close-emergency-access", "{hospital}", "--patient", "ADDR"]),
    ("cancel-signatures", ["cancel-signatures", "--patient", "ADDR"]),
    ("care-authorize", ["care", "authorize", "ADDR"]),
    ("care-authorize-patient", ["care", "authorize", "{hospital}", "--patient", "ADDR"]),
    ("care-revoke", ["care", "revoke", "ADDR"]),
    ("care-show", ["care", "show", "ADDR"]),
    ("deliver-keys", ["deliver-keys", "ADDR", "--patient", "{patient}"]),
    ("deliver-keys-patient", ["deliver-keys", "{hospital}", "--patient", "ADDR"]),
    ("grants", ["grants", "--patient", "ADDR"]),
    ("audit", ["audit", "--patient", "ADDR"]),
    ("institution-verify", ["institution", "verify", "ADDR"]),
    ("institution-reinstate", ["institution", "reinstate", "ADDR"]),
    ("institution-suspend", ["institution", "suspend", "ADDR"]),
    ("institution-show", ["institution", "show", "ADDR"]),
    ("add-practitioner", ["institution", "add-practitioner", "ADDR"]),
    ("join", ["institution", "join", "ADDR"]),
    ("remove-practitioner", ["institution", "remove-practitioner", "ADDR"]),
    ("registrar-add", ["registrar", "add", "ADDR"]),
    ("registrar-remove", ["registrar", "remove", "ADDR"]),
    ("patient-show", ["patient", "show", "ADDR"]),
    ("policy-issue", ["policy", "issue", "--patient", "ADDR", "--limit", "100", "--code", "s|1"]),
    ("policy-show", ["policy", "show", "--patient", "ADDR"]),
    ("claim-list", ["claim", "list", "--submitter", "ADDR"]),
    ("add-resolver", ["claim", "add-resolver", "ADDR"]),
    ("trial-register", ["trial", "register", "{data}/observation.json", "--site", "ADDR"]),
    ("trial-add-site", ["trial", "add-site", "1", "ADDR"]),
    ("trial-add-monitor", ["trial", "add-monitor", "1", "ADDR"]),
    ("trial-list", ["trial", "list", "--sponsor", "ADDR"]),
    ("trial-show", ["trial", "show", "1", "--participant", "ADDR"]),
    ("trial-consent-site", ["trial", "consent", "1", "--sign-only", "--out", "{tmp}/c.json",
                            "--site", "ADDR"]),
    ("trial-consent-delegate", ["trial", "consent", "1", "--sign-only", "--out", "{tmp}/c.json",
                                "--site", "{hospital}", "--delegate", "ADDR"]),
    ("trial-withdraw", ["trial", "withdraw", "1", "--participant", "ADDR"]),
    ("trial-submit-data", ["trial", "submit-data", "1", "{data}/observation.json",
                           "--participant", "ADDR", "--visit", "baseline"]),
    ("trial-data", ["trial", "data", "1", "--participant", "ADDR"]),
    ("deploy-registrar", ["deploy", "--registrar", "ADDR"]),
]  # fmt: skip


def _addresses() -> list[tuple[str, list[str], str]]:
    """Each place with one bad form (taken in turn), and every form at ``grant``."""
    rows = []
    for n, (name, argv) in enumerate(_ADDRESS_PLACES):
        form, phrase = _ADDRESS_FORMS[n % len(_ADDRESS_FORMS)]
        rows.append((f"address-{name}", [form if a == "ADDR" else a for a in argv], phrase))
    for form, phrase in _ADDRESS_FORMS[1:]:
        rows.append((f"address-anchor-{phrase.split()[0]}-{len(form)}",
                     ["anchor", "{data}/observation.json", "--patient", form], phrase))  # fmt: skip
    return rows


# --- durations -----------------------------------------------------------------------------------

_DURATIONS = [
    ("grant-99999w", ["grant", "{hospital}", "--expires", "99999w"], "maximum of 10 years"),
    ("grant-huge-days", ["grant", "{hospital}", "--expires", "100000000000d"], "maximum of 10 yea"),
    ("grant-3654d", ["grant", "{hospital}", "--expires", "3654d"], "maximum of 10 years"),
    ("grant-zero", ["grant", "{hospital}", "--expires", "0d"], "not more than zero"),
    ("grant-negative", ["grant", "{hospital}", "--expires", "-3d"], "not more than zero"),
    ("grant-garbage", ["grant", "{hospital}", "--expires", "soon"], "is not a duration"),
    ("grant-empty", ["grant", "{hospital}", "--expires", ""], "is not a duration"),
    ("grant-no-unit", ["grant", "{hospital}", "--expires", "30"], "is not a duration"),
    ("grant-bad-unit", ["grant", "{hospital}", "--expires", "3y"], "is not a duration"),
    ("grant-nan", ["grant", "{hospital}", "--expires", "nan"], "is not a duration"),
    ("grant-overflow", ["grant", "{hospital}", "--expires", "1e400d"], "is not a duration"),
    ("grant-unicode", ["grant", "{hospital}", "--expires", "\u0663\u0660d"], "is not a duration"),
    ("emergency-25h", ["emergency-access", "{patient}", "--reason", "R", "--duration", "25h"],
     "maximum of 24 hours"),
    ("emergency-zero", ["emergency-access", "{patient}", "--reason", "R", "--duration", "0h"],
     "not more than zero"),
    ("care-for-99999w", ["care", "authorize", "{hospital}", "--for", "99999w"], "maximum of 10"),
    ("care-for-garbage", ["care", "authorize", "{hospital}", "--for", "forever"], "not a durat"),
    ("policy-term-367d", ["policy", "issue", "--patient", "{patient}", "--limit", "100",
                          "--code", "s|1", "--term", "367d"], "maximum of 366 days"),
    ("trial-consent-valid-0s", ["trial", "consent", "1", "--sign-only", "--out", "{tmp}/c.json",
                                "--site", "{hospital}", "--valid-for", "0s"], "not more than zero"),
    ("trial-withdraw-valid-huge", ["trial", "withdraw", "1", "--sign-only", "--out",
                                   "{tmp}/w.json", "--valid-for", "1e9w"], "is not a duration"),
]  # fmt: skip

# --- ids, numbers and choices --------------------------------------------------------------------

_UNKNOWN_ID = "0x" + "f" * 64
_IDS = [
    ("read-short-id", ["read", "0x12"], "is not a record id"),
    ("read-not-hex", ["read", "nothex"], "is not a record id"),
    ("read-empty", ["read", ""], "is not a record id"),
    ("read-unknown", ["read", _UNKNOWN_ID], "not anchored on this chain"),
    ("read-bad-uri", ["read", "medledger://eip155:x/0x1/0x2"], "is not a record id"),
    ("read-unicode", ["read", "0x" + "\u0661" * 64], "is not a record id"),
    ("verify-bad-id", ["verify", "0xnothex"], "is not a record id"),
    ("verify-unknown", ["verify", _UNKNOWN_ID], "failed verification"),
    ("verify-both", ["verify", _UNKNOWN_ID, "--patient", "{patient}"], "either RECORD_ID or"),
    ("verify-neither", ["verify"], "either RECORD_ID or"),
    ("history-bad-id", ["history", "0x1234"], "is not a record id"),
    ("history-unknown", ["history", _UNKNOWN_ID], "not anchored on this chain"),
    ("erase-bad-id", ["erase", "garbage"], "is not a record id"),
    ("erase-unknown", ["erase", _UNKNOWN_ID], "not anchored on this chain"),
    ("anchor-bad-category", ["anchor", "{data}/observation.json", "--patient", "{patient}",
                             "--category", "gossip"], "gossip"),
    ("anchor-bad-update", ["anchor", "{data}/observation.json", "--patient", "{patient}",
                           "--update", "0xbeef"], "is not a record id"),
    ("grant-bad-scope", ["grant", "{hospital}", "--scope", "everything"], "is not record:ID"),
    ("grant-bad-record-scope", ["grant", "{hospital}", "--scope", "record:0x12"], "record id"),
    ("grant-bad-category", ["grant", "{hospital}", "--scope", "category:gossip"], "gossip"),
    ("grant-bad-purpose", ["grant", "{hospital}", "--purpose", "curiosity"], "curiosity"),
    ("grant-nobody", ["grant"], "name the GRANTEE"),
    ("revoke-bad-scope", ["revoke", "{hospital}", "--scope", "sometimes"], "is not record:ID"),
    ("deliver-keys-bad-scope", ["deliver-keys", "{hospital}", "--patient", "{patient}",
                                "--scope", "x:y"], "is not record:ID"),
    ("claim-show-word", ["claim", "show", "seven"], "is not a claim id"),
    ("claim-show-unknown", ["claim", "show", "7"], "is not submitted"),
    ("claim-show-negative", ["claim", "show", "--", "-1"], "is not a claim id"),
    ("claim-show-dash", ["claim", "show", "-1"], "No such option"),
    ("claim-show-huge", ["claim", "show", "9" * 90], "is not a claim id"),
    ("claim-review-word", ["claim", "review", "x"], "is not a claim id"),
    ("claim-approve-word", ["claim", "approve", "x"], "is not a claim id"),
    ("claim-approve-amount", ["claim", "approve", "1", "--amount", "lots"], "is not an amount"),
    ("claim-approve-negative", ["claim", "approve", "1", "--amount", "-5"], "non-negative"),
    ("claim-deny-reason", ["claim", "deny", "1", "--reason", "because"], "unknown reason code"),
    ("claim-list-state", ["claim", "list", "--state", "lost"], "unknown state"),
    ("claim-resolve-award", ["claim", "resolve", "1", "--award", "1e999"], "too large an amount"),
    ("claim-provide-info-bad", ["claim", "provide-info", "1", "--evidence", "0x1"], "record id"),
    ("claim-submit-nothing", ["claim", "submit", "--policy", "1"], "give a FHIR Claim file"),
    ("claim-submit-bad-evidence", ["claim", "submit", "--policy", "1", "--record", "0x1"],
     "record id"),
    ("claim-submit-policy-word", ["claim", "submit", "--policy", "one"], "not a valid integer"),
    ("policy-show-unknown", ["policy", "show", "3"], "policy 3 is not issued"),
    ("policy-show-negative", ["policy", "show", "--", "-1"], "is not issued"),
    ("policy-show-huge", ["policy", "show", "9" * 40], "is not issued"),
    ("policy-fund-word", ["policy", "fund", "1", "lots"], "is not an amount"),
    ("policy-fund-negative", ["policy", "fund", "1", "--", "-5"], "non-negative"),
    ("policy-reclaim-word", ["policy", "reclaim", "x"], "not a valid integer"),
    ("trial-show-unknown", ["trial", "show", "9"], "study 9 is not registered"),
    ("trial-show-huge", ["trial", "show", "9" * 40], "is not registered"),
    ("trial-show-word", ["trial", "show", "first"], "not a valid integer"),
    ("trial-read-bad-id", ["trial", "read", "1", "nothex"], "not"),
    ("trial-audit-unknown", ["trial", "audit", "77"], "study 77 is not registered"),
    ("trial-consent-bad-purpose", ["trial", "consent", "1", "--sign-only", "--out",
                                   "{tmp}/c.json", "--site", "{hospital}", "--purpose", "fun"],
     "fun"),
    ("registrar-threshold-zero", ["registrar", "threshold", "0"], "not in the range"),
    ("registrar-threshold-huge", ["registrar", "threshold", "99"], "not in the range"),
    ("institution-apply-kind", ["institution", "apply", "--kind", "spa", "--name", "X"], "spa"),
    ("unknown-verb", ["anchr"], "No such command"),
    ("unknown-option", ["grants", "--patiently", "x"], "No such option"),
]  # fmt: skip

# --- accounts and networks -----------------------------------------------------------------------

_ACCOUNTS = [
    ("account-dev-99", ["grants", "--account", "dev:99"], "dev:99"),
    ("account-dev-word", ["grants", "--account", "dev:x"], "dev:x"),
    ("account-env-unset", ["grants", "--account", "env:MEDLEDGER_NO_SUCH_KEY"], "NO_SUCH_KEY"),
    ("account-unknown-alias", ["grants", "--account", "nobody-here"], "nobody-here"),
    ("publish-key-account", ["publish-key", "--account", "dev:-1"], "dev:-1"),
    ("patient-register-account", ["patient", "register", "--account", "env:"], "env:"),
    ("network-unknown", ["grants", "--network", "atlantis"], "atlantis"),
    ("network-dead", ["grants", "--network", "http://127.0.0.1:9"], "is not reachable"),
]  # fmt: skip

# --- files ---------------------------------------------------------------------------------------

_FILES = [
    ("anchor-empty-folder", ["anchor", "{data}/empty", "--patient", "{patient}"],
     "holds no .json file"),
    ("anchor-only-notes", ["anchor", "{data}/notes-only", "--patient", "{patient}"],
     "holds no .json file"),
    ("anchor-only-hidden", ["anchor", "{data}/hidden-only", "--patient", "{patient}"],
     "holds no .json file"),
    ("anchor-missing-file", ["anchor", "{data}/nowhere.json", "--patient", "{patient}"],
     "does not exist"),
    ("anchor-duplicate-key", ["anchor", "{data}/duplicate-key.json", "--patient", "{patient}"],
     "the key 'id' appears twice"),
    ("anchor-duplicate-key-strict", ["anchor", "{data}/duplicate-key.json", "--strict",
                                     "--patient", "{patient}"], "the key 'id' appears twice"),
    ("anchor-nested-second-patient", ["anchor", "{data}/nested-two-patients.json", "--patient",
                                      "{patient}"], "entry[1].resource.entry[0].subject"),
    ("anchor-two-patients", ["anchor", "{data}/observation.json", "{data}/other-patient.json",
                             "--patient", "{patient}"], "one input must hold the records of one"),
    ("anchor-not-json", ["anchor", "{data}/not-json.json", "--patient", "{patient}"],
     "not valid JSON"),
    ("anchor-empty-file", ["anchor", "{data}/empty.json", "--patient", "{patient}"],
     "the input is empty"),
    ("anchor-nan", ["anchor", "{data}/nan.json", "--patient", "{patient}"], "NaN"),
    ("anchor-array", ["anchor", "{data}/array.json", "--patient", "{patient}"], "an array"),
    ("anchor-unknown-type", ["anchor", "{data}/unknown-type.json", "--patient", "{patient}"],
     "not a FHIR R4 resource type"),
    ("anchor-no-entries", ["anchor", "{data}/empty-bundle.json", "--patient", "{patient}"],
     "no entries"),
    ("anchor-latin1", ["anchor", "{data}/latin1.json", "--patient", "{patient}"], "not UTF-8"),
    ("anchor-strict-schema", ["anchor", "{data}/schema-slip.json", "--strict", "--patient",
                              "{patient}"], "validation problem"),
    ("anchor-deep", ["anchor", "{data}/deep.json", "--patient", "{patient}"], "nested too deep"),
    ("grant-submit-malformed", ["grant", "--submit", "{data}/not-json.json"], "not valid JSON"),
    ("grant-submit-array", ["grant", "--submit", "{data}/array.json"], "not a JSON object"),
    ("grant-submit-not-a-grant", ["grant", "--submit", "{data}/observation.json"],
     "not a MedLedger signed grant"),
    ("grant-submit-duplicate-key", ["grant", "--submit", "{data}/duplicate-key.json"],
     "appears twice"),
    ("grant-submit-empty", ["grant", "--submit", "{data}/empty.json"], "not valid JSON"),
    ("grant-submit-folder", ["grant", "--submit", "{data}/empty"], "is a directory"),
    ("grant-submit-missing", ["grant", "--submit", "{data}/nowhere.json"], "does not exist"),
    ("grant-sign-only-no-out", ["grant", "{hospital}", "--sign-only"], "--out"),
    ("grant-out-missing-folder", ["grant", "{hospital}", "--sign-only", "--out",
                                  "{tmp}/no/such/grant.json"], "does not exist"),
    ("care-submit-malformed", ["care", "authorize", "{hospital}", "--submit",
                               "{data}/not-json.json"], "not valid JSON"),
    ("care-submit-not-care", ["care", "authorize", "{hospital}", "--submit",
                              "{data}/observation.json"], "not a MedLedger signed care"),
    ("care-submit-missing", ["care", "authorize", "{hospital}", "--submit",
                             "{data}/nowhere.json"], "no such file"),
    ("trial-consent-submit-malformed", ["trial", "consent", "--submit", "{data}/not-json.json"],
     "not valid JSON"),
    ("trial-consent-submit-not-consent", ["trial", "consent", "--submit",
                                          "{data}/observation.json"], "consent"),
    ("trial-withdraw-submit-malformed", ["trial", "withdraw", "--submit",
                                         "{data}/duplicate-key.json"], "appears twice"),
    ("trial-cancel-malformed", ["trial", "cancel-signatures", "--signed", "{data}/array.json"],
     "not a JSON object"),
    ("trial-verify-link-malformed", ["trial", "verify-link", "{data}/not-json.json"],
     "not valid JSON"),
    ("trial-register-not-json", ["trial", "register", "{data}/not-json.json"], "not valid JSON"),
    ("trial-register-missing", ["trial", "register", "{data}/nowhere.json"], "does not exist"),
    ("read-out-missing-folder", ["read", "{record}", "--out", "{tmp}/no/such/record.json"],
     "does not exist"),
    ("read-out-folder", ["read", "{record}", "--out", "{tmp}"], "is a folder"),
    ("ipfs-cat-bad-cid", ["ipfs", "cat", "notacid"], "CID"),
    ("ipfs-cat-out-missing-folder", ["ipfs", "cat", "notacid", "--out", "{tmp}/x/y"],
     "does not exist"),
    ("ipfs-export-bad-cid", ["ipfs", "export-car", "Qm123", "{tmp}/out.car"], "CID"),
    ("ipfs-export-missing-folder", ["ipfs", "export-car", "Qm123", "{tmp}/no/out.car"],
     "does not exist"),
    ("ipfs-import-garbage", ["ipfs", "import-car", "{data}/not-json.json"], "header"),
    ("ipfs-add-folder", ["ipfs", "add", "{data}/empty"], "is a directory"),
    ("policy-terms-out-missing", ["policy", "show", "1", "--terms", "--out", "{tmp}/a/b.json"],
     "does not exist"),
]  # fmt: skip

# --- claims and policies -------------------------------------------------------------------------

_CLAIM_FILES = {
    "claim-net-999-total-100": "add up to 999.00 USD but the total is 100.00",
    "claim-string-total": "is not a JSON number",
    "claim-too-precise": "more decimals than USD allows",
    "claim-bad-currency": "is not a three-letter ISO 4217 code",
    "claim-two-currencies": "mixes currencies",
    "claim-quantity-times-price": "quantity * unitPrice * factor is 20.00",
    "claim-zero-total": "must be more than zero",
    "claim-no-codes": "no item has a productOrService code",
    "claim-no-service-period": "no service period",
    "claim-not-a-claim": "is not a FHIR Claim",
    "claim-duplicate-key": "the key 'total' appears twice",
    "claim-huge": "too large",
    "claim-yen-fraction": "more decimals than JPY allows (0)",
}

_POLICY = ["policy", "issue", "--patient", "{patient}"]
_POLICIES = [
    ("policy-code-without-system", [*_POLICY, "--limit", "100", "--code", "99213"],
     "names no code system"),
    ("policy-deductible-above-limit", [*_POLICY, "--limit", "100", "--deductible", "500",
                                       "--code", "s|1"], "more than the annual limit"),
    ("policy-bad-currency", [*_POLICY, "--limit", "100", "--code", "s|1", "--currency",
                             "dollars"], "three-letter ISO 4217"),
    ("policy-zero-limit", [*_POLICY, "--limit", "0", "--code", "s|1"], "more than zero"),
    ("policy-negative-limit", [*_POLICY, "--limit", "-1", "--code", "s|1"], "non-negative"),
    ("policy-word-limit", [*_POLICY, "--limit", "plenty", "--code", "s|1"], "not an amount"),
    ("policy-coverage-150", [*_POLICY, "--limit", "100", "--code", "s|1", "--coverage", "150%"],
     "at most 100 %"),
    ("policy-coverage-word", [*_POLICY, "--limit", "100", "--code", "s|1", "--coverage", "most"],
     "most"),
    ("policy-too-precise", [*_POLICY, "--limit", "100.1234567", "--code", "s|1"], "decimals"),
    ("policy-empty-code", [*_POLICY, "--limit", "100", "--code", "s|"], "is not SYSTEM|CODE"),
]  # fmt: skip


def _claims() -> list[tuple[str, list[str], str]]:
    rows = [
        (name, ["claim", "submit", f"{{data}}/{name}.json", "--policy", "1", "--evidence",
                "{record}"], phrase)
        for name, phrase in _CLAIM_FILES.items()
    ]  # fmt: skip
    return rows + _POLICIES


CASES = _addresses() + _DURATIONS + _IDS + _ACCOUNTS + _FILES + _claims()


# --- the bad files ------------------------------------------------------------------------------

OBSERVATION = (
    Path(__file__).resolve().parents[2] / "src/medledger/demo/data/Observation-example.json"
)


def _observation(identifier: str, patient: str) -> dict[str, object]:
    return {"resourceType": "Observation", "id": identifier, "status": "final",
            "code": {"text": "pulse"}, "subject": {"reference": f"Patient/{patient}"}}  # fmt: skip


def _claim(items: list[dict[str, object]], total: object = None, **extra: object) -> dict:
    claim: dict[str, object] = {
        "resourceType": "Claim", "status": "active", "use": "claim",
        "patient": {"reference": "Patient/p1"}, "created": "2024-03-05",
        "billablePeriod": {"start": "2024-03-05", "end": "2024-03-05"},
        "item": [{"sequence": n + 1, "productOrService": {"coding": [
            {"system": "http://www.ama-assn.org/go/cpt", "code": "99213"}]}, **item}
            for n, item in enumerate(items)],
    }  # fmt: skip
    if total is not None:
        claim["total"] = total
    claim.update(extra)
    return claim


def _usd(value: object, currency: str = "USD") -> dict[str, object]:
    return {"value": value, "currency": currency}


def write_bad_files(folder: Path) -> None:
    """Write every bad input file the catalogue names into ``folder``."""
    observation = OBSERVATION.read_text()
    (folder / "observation.json").write_text(observation)
    other = json.loads(observation)
    other["subject"] = {"reference": "Patient/someone-else"}
    (folder / "other-patient.json").write_text(json.dumps(other))
    for name in ("empty", "notes-only", "hidden-only"):
        (folder / name).mkdir()
    (folder / "notes-only" / "notes.txt").write_text("call the lab")
    (folder / "hidden-only" / ".observation.json").write_text(observation)
    (folder / "duplicate-key.json").write_text(
        '{"resourceType": "Observation", "id": "a", "status": "final", "id": "b",'
        ' "code": {"text": "x"}}'
    )
    inner = {"resourceType": "Bundle", "type": "collection",
             "entry": [{"resource": _observation("o2", "p2")}]}  # fmt: skip
    nested = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": _observation("o1", "p1")}, {"resource": inner}]}  # fmt: skip
    (folder / "nested-two-patients.json").write_text(json.dumps(nested))
    (folder / "not-json.json").write_text("{ this is not json")
    (folder / "empty.json").write_text("")
    (folder / "nan.json").write_text('{"resourceType": "Observation", "value": NaN}')
    (folder / "array.json").write_text("[1, 2]")
    (folder / "unknown-type.json").write_text('{"resourceType": "Obsrvation"}')
    (folder / "empty-bundle.json").write_text('{"resourceType": "Bundle", "entry": []}')
    (folder / "latin1.json").write_bytes('{"resourceType": "Patient", "name": "Jos\xe9"}'.encode(
        "latin-1"))  # fmt: skip
    (folder / "schema-slip.json").write_text(
        json.dumps(dict(_observation("o3", "p1"), colour="blue"))
    )
    (folder / "deep.json").write_text('{"resourceType": "Basic", "x": ' + "[" * 100_000 + "]" *
                                      100_000 + "}")  # fmt: skip
    claims = {
        "claim-net-999-total-100": _claim([{"net": _usd(999)}], _usd(100)),
        "claim-string-total": _claim([{"net": _usd(100)}], _usd("100.00")),
        "claim-too-precise": _claim([{"net": _usd(12.3456789)}],
                                    _usd(12.3456789)),
        "claim-bad-currency": _claim([{"net": _usd(10, "usd")}]),
        "claim-two-currencies": _claim([{"net": _usd(10, "EUR")}], _usd(10)),
        "claim-quantity-times-price": _claim(
            [{"quantity": {"value": 2}, "unitPrice": _usd(10), "net": _usd(30)}]),
        "claim-zero-total": _claim([{"net": _usd(0)}], _usd(0)),
        "claim-no-codes": dict(_claim([{"net": _usd(10)}]), item=[{"sequence": 1,
                                                                   "net": _usd(10)}]),
        "claim-no-service-period": {k: v for k, v in _claim([{"net": _usd(10)}]).items()
                                    if k != "billablePeriod"},
        "claim-not-a-claim": _observation("o9", "p1"),
        "claim-huge": _claim([{"net": _usd(1e300)}]),
        "claim-yen-fraction": _claim([{"net": _usd(100.5, "JPY")}]),
    }  # fmt: skip
    for name, resource in claims.items():
        (folder / f"{name}.json").write_text(json.dumps(resource))
    (folder / "claim-duplicate-key.json").write_text(
        json.dumps(_claim([{"net": _usd(10)}], _usd(10)))[:-1] + ', "total": {"value": 1}}'
    )

