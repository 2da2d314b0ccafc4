"""Accounts whose key stays in an external signer (``--account signer:URL#0xADDRESS``).

The signer here is a stand-in, not Clef or Web3Signer: a JSON-RPC server on 127.0.0.1 written
from the published descriptions of the methods MedLedger calls, signing with eth-account:

- Ethereum JSON-RPC (https://ethereum.github.io/execution-apis/api-documentation/):
  ``eth_accounts``, ``eth_signTransaction`` (the raw signed transaction);
- Web3Signer's JSON-RPC (https://docs.web3signer.consensys.io/reference/api/json-rpc): the raw
  transaction as the hex result;
- Clef's external API (https://geth.ethereum.org/docs/tools/clef/apis, API version 6):
  ``account_list``, ``account_signTransaction`` answering ``{"raw": ..., "tx": ...}``,
  ``account_signTypedData``; a refusal is error -32000 "Request denied";
- EIP-712 / ``eth_signTypedData_v4`` (https://eips.ethereum.org/EIPS/eip-712).
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import rlp  # type: ignore[import-untyped]
from eth_account import Account
from eth_account.messages import encode_typed_data
from loopback import LoopbackServer
from rlp.codec import decode_raw  # type: ignore[import-untyped]

from medledger import consent, providers, records
from medledger.accounts import dev_account, load_account
from medledger.categories import Category
from medledger.chain.outbox import SIGNED, open_outbox
from medledger.chain.pipeline import Pipeline, Rpc, _word, sign_eip1559
from medledger.crypto import eip712
from medledger.crypto.envelope import public_key
from medledger.errors import MedLedgerError, NodeUnavailable, SignerRefused
from medledger.ipfs.local import LocalBlockStore
from medledger.signers import ExternalSigner

OBSERVATION = (
    Path(__file__).resolve().parents[2] / "src/medledger/demo/data/Observation-example.json"
)
DENIED = {"code": -32000, "message": "Request denied"}


class StandInSigner(LoopbackServer):
    """A signer holding some keys; ``mode`` says how it answers (see the module)."""

    def __init__(self, *keys: bytes) -> None:
        self.accounts = {Account.from_key(k).address.lower(): Account.from_key(k) for k in keys}
        self.mode = "web3signer"
        self.calls: list[str] = []
        self._serve(self._handler())

    def spec(self, address: str, data_key: str | None = None, url: str | None = None) -> str:
        return f"signer:{url or self.url}#{address}" + (f",key={data_key}" if data_key else "")

    def answer(self, method: str, params: list[Any]) -> dict[str, Any]:
        self.calls.append(method)
        clef = method.startswith("account_")
        if self.mode == "clef" and not clef:
            return {"error": {"code": -32601, "message": f"the method {method} does not exist"}}
        if self.mode == "denied":
            return {"error": DENIED}
        if self.mode == "unknown":  # holds none of the keys it was given
            if method in ("eth_accounts", "account_list"):
                return {"result": []}
            return {"error": {"code": -32000, "message": "unknown account"}}
        if method in ("eth_accounts", "account_list"):
            return {"result": list(self.accounts)}
        if method in ("eth_signTransaction", "account_signTransaction"):
            return self._sign_transaction(params[0], clef)
        if method in ("eth_signTypedData_v4", "account_signTypedData"):
            account = self._account(params[0])
            if account is None:
                return {"error": {"code": -32000, "message": "unknown account"}}
            signed = account.sign_message(encode_typed_data(full_message=params[1]))
            return {"result": "0x" + bytes(signed.signature).hex()}
        return {"error": {"code": -32601, "message": f"the method {method} does not exist"}}

    def _account(self, address: str) -> Any:
        account = self.accounts.get(address.lower())
        if account is not None and self.mode == "other-key":
            return Account.from_key(dev_account(19).key)
        return account

    def _sign_transaction(self, request: dict[str, Any], clef: bool) -> dict[str, Any]:
        account = self._account(request["from"])
        if account is None:
            return {"error": {"code": -32000, "message": "unknown account"}}
        tx = {
            "type": 2, "chainId": int(request["chainId"], 16), "nonce": int(request["nonce"], 16),
            "gas": int(request["gas"], 16), "value": int(request["value"], 16),
            "maxFeePerGas": int(request["maxFeePerGas"], 16),
            "maxPriorityFeePerGas": int(request["maxPriorityFeePerGas"], 16),
            "data": request["data"], "accessList": [],
        }  # fmt: skip
        if self.mode == "other-value":
            tx["value"] += 1
        if "to" in request:
            tx["to"] = request["to"]
        envelope = bytes(account.sign_transaction(tx).raw_transaction)
        if self.mode == "rlp-string":  # go-ethereum's rlp.EncodeToBytes of a typed transaction
            envelope = rlp.encode(envelope)
        raw = "0x" + envelope.hex()
        return {"result": {"raw": raw, "tx": tx} if clef else raw}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        signer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                reply = {"jsonrpc": "2.0", "id": body["id"]}
                reply.update(signer.answer(body["method"], body["params"]))
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        return Handler


@pytest.fixture
def signer():
    """The stand-in signer holding the hospital's (dev:3), the patient's (dev:5) and a new
    institution's (dev:10) keys."""
    server = StandInSigner(*(dev_account(i).key for i in (3, 5, 10)))
    yield server
    server.stop()


@pytest.fixture
def cli_ready(chain, verified_institution, hospital, registered_patient, care):
    return care(registered_patient, verified_institution(hospital))


@pytest.fixture
def store(tmp_path) -> LocalBlockStore:
    return LocalBlockStore(tmp_path / "ipfs")


def _sent(chain, receipts) -> list[bytes]:
    rpc = Rpc(chain.url)
    replies = rpc.batch([("eth_getRawTransactionByHash", [r.transaction_hash]) for r in receipts])
    return [bytes.fromhex(reply["result"][2:]) for reply in replies]


def _local_copy(raw: bytes, key: bytes) -> bytes:
    """The same transaction signed by the local key (fields decoded from ``raw``)."""
    fields = decode_raw(raw[1:], True, 0)[0][:9]
    n = [int.from_bytes(fields[i], "big") for i in (0, 1, 2, 3, 4, 6)]
    to = "0x" + fields[5].hex() if fields[5] else None
    return sign_eip1559(key, n[0], n[1], to, fields[7], n[4], n[3], n[2], n[5])


@pytest.mark.parametrize("mode", ["web3signer", "clef"], ids=["raw-hex", "clef-raw-and-tx"])
def test_an_institution_in_a_signer_applies_and_anchors_a_record_the_patient_reads(
    chain, store, signer, mode, registrars, registered_patient, tmp_path, monkeypatch
):
    signer.mode = mode
    data_key = Account.create().key
    monkeypatch.setenv("CLINIC_DATA_KEY", data_key.hex())
    clinic = load_account(signer.spec(dev_account(10).address, "env:CLINIC_DATA_KEY"), 31337)
    assert isinstance(clinic, ExternalSigner) and clinic.key == bytes(data_key)

    providers.apply_institution(chain, clinic, providers.InstitutionKind.CLINIC, "Signer Clinic")
    for registrar in registrars[:2]:
        providers.approve_institution(chain, registrar, clinic.address)
    providers.authorize_care(
        chain, registered_patient, registered_patient.address, clinic.address, None
    )
    (record,) = records.anchor(
        chain, store, clinic, registered_patient.address,
        [records.Draft(OBSERVATION.read_bytes(), Category.LAB)],
    )  # fmt: skip

    assert records.read(chain, store, registered_patient, record.id) == OBSERVATION.read_bytes()
    assert providers.encryption_key(chain, clinic.address) == public_key(bytes(data_key))
    wanted = "account_signTransaction" if mode == "clef" else "eth_signTransaction"
    assert signer.calls.count(wanted) == 2  # one a transaction: the application, the anchor


def _send(chain, account):
    """Two payments (plain and with data) from ``account`` through the pipeline."""
    return Pipeline(chain, account).send(
        "paying", dev_account(9).address, [b"", b"\x01\x02"], gas=60_000, value=1
    )


@pytest.mark.parametrize("mode", ["web3signer", "clef", "rlp-string"])
def test_transactions_from_the_signer_are_the_bytes_the_local_key_signs(chain, signer, mode):
    signer.mode = mode
    hospital = load_account(signer.spec(dev_account(3).address), 31337)
    before = Rpc(chain.url).nonce(hospital.address)

    sent = _sent(chain, _send(chain, hospital))

    assert [decode_raw(raw[1:], True, 0)[0][1] for raw in sent] == [
        _word(before), _word(before + 1)
    ]  # fmt: skip
    assert sent == [_local_copy(raw, dev_account(3).key) for raw in sent]
    asked = ["eth_accounts", "eth_signTransaction", "eth_signTransaction"]
    if mode == "clef":  # the eth_ names are unknown to it; Clef's own names follow each
        asked = [n for m in asked for n in (m, m.replace("eth_", "account_").replace(
            "account_accounts", "account_list"))]  # fmt: skip
    assert signer.calls == asked


def test_a_patient_in_a_signer_signs_a_grant_the_institution_relays(
    chain, store, signer, registered_patient, verified_institution, hospital
):
    verified_institution(hospital)
    patient = load_account(signer.spec(registered_patient.address, "dev:5"), 31337)
    args = (
        chain, store, None, registered_patient.address, hospital.address,
        consent.Scope(consent.ScopeKind.ALL), consent.Purpose.TREATMENT,
        timedelta(days=30),
    )  # fmt: skip
    document = consent.sign_grant(*args[:2], patient, *args[3:])
    local = consent.sign_grant(*args[:2], registered_patient, *args[3:])
    assert document["signature"] == local["signature"]  # RFC 6979: the same signature
    assert "eth_signTypedData_v4" in signer.calls

    state = consent.submit_signed_grant(chain, store, hospital, document)
    assert state.grantee == hospital.address and state.live(chain.now())


def _typed(chain) -> dict[str, Any]:
    return eip712.typed_data(
        "ConsentManager", chain.chain_id, dev_account(0).address, "Ping",
        [("n", "uint256")], {"n": 1},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("denied", "eth_accounts refused: Request denied; nothing was sent"),
        ("unknown", "the signer does not hold this account; nothing was sent"),
        ("other-key", "the transaction came back signed by " + dev_account(19).address),
        ("other-value", "the signer returned another transaction than asked"),
        ("down", "external signer at http://127.0.0.1:9 is not reachable"),
    ],
    ids=["user-rejected", "unknown-account", "another-key", "another-value", "signer-down"],
)
def test_a_signer_that_refuses_gives_one_line_and_nothing_is_sent(
    chain, signer, medledger, cli_ready, hospital, mode, message
):
    signer.mode = mode
    url = "http://operator:s3cret@127.0.0.1:9" if mode == "down" else None
    spec = signer.spec(hospital.address, "dev:3", url=url)
    before = Rpc(chain.url).nonce(hospital.address, "pending")

    out = medledger("anchor", str(OBSERVATION), "--patient", cli_ready.address, "--account", spec)
    with pytest.raises(NodeUnavailable if mode == "down" else SignerRefused) as raised:
        _send(chain, load_account(spec, 31337))

    assert out.exit_code == 1 and out.stdout == ""
    assert out.stderr.splitlines() == [f"error: {raised.value}"]
    assert message in out.stderr
    assert "s3cret" not in out.stderr and "operator" not in out.stderr
    assert Rpc(chain.url).nonce(hospital.address, "pending") == before
    assert open_outbox(chain.settings.home).entries(chain.journal_key, (SIGNED,)) == []


def test_typed_data_signed_by_another_key_is_refused(chain, signer):
    signer.mode = "other-key"
    patient = load_account(signer.spec(dev_account(5).address), 31337)
    with pytest.raises(SignerRefused, match="typed data came back signed by"):
        patient.sign_typed_data(_typed(chain))


def test_an_account_without_a_data_key_says_how_to_name_one(signer):
    hospital = load_account(signer.spec(dev_account(3).address), 31337)
    with pytest.raises(MedLedgerError, match=r"name one after the address \(signer:URL"):
        _ = hospital.key
    assert "127.0.0.1" in repr(hospital) and "key" not in repr(hospital).lower()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("signer:ftp://127.0.0.1:1#0x" + "00" * 20, "expected signer:http(s)://HOST:PORT"),
        ("signer:http://127.0.0.1:1#nope", "expected the account's address after '#'"),
        ("signer:http://127.0.0.1:1#" + dev_account(3).address + ",pin=1", "unknown option"),
    ],
    ids=["scheme", "address", "option"],
)
def test_a_malformed_signer_account_is_one_clear_line(spec, message):
    with pytest.raises(MedLedgerError, match=re.escape(message)):
        load_account(spec, 31337)


@pytest.fixture
def aliased(chain, signer):
    """config.toml names the stand-in ``hospital`` (its URL, the data key dev:3)."""
    config = chain.settings.home / "config.toml"
    assert not config.exists()
    config.write_text(f'[signers]\nhospital = "{signer.url}#{dev_account(3).address},key=dev:3"\n')
    yield
    config.unlink()


def test_a_signer_url_with_credentials_is_never_written_in_config_toml(medledger, chain, signer):
    config = chain.settings.home / "config.toml"
    url = signer.url.replace("http://", "http://operator:s3cret@")
    config.write_text(f'[signers]\nhospital = "{url}#{dev_account(3).address},key=dev:3"\n')
    try:
        out = medledger("anchor", str(OBSERVATION), "--account", "signer:hospital")
    finally:
        config.unlink()
    assert out.exit_code == 1
    assert "a secret is never written in config.toml" in out.stderr
    assert "s3cret" not in out.stdout + out.stderr

def test_a_configured_signer_anchors_through_the_cli_and_shows_no_credentials(
    medledger, cli_ready, signer, aliased, tmp_path
):
    out = medledger("anchor", str(OBSERVATION), "--patient", cli_ready.address,
                    "--account", "signer:hospital", "--json")  # fmt: skip
    assert out.exit_code == 0, out.stderr
    (row,) = out.json()
    back = tmp_path / "back.json"
    assert medledger("read", row["id"], "--account", "dev:5", "--out", str(back)).exit_code == 0
    assert back.read_bytes() == OBSERVATION.read_bytes()
    assert signer.calls.count("eth_signTransaction") == 1

    unknown = medledger("anchor", str(OBSERVATION), "--patient", cli_ready.address,
                        "--account", "signer:clinic")  # fmt: skip
    assert unknown.exit_code == 1
    assert unknown.stderr.strip() == (
        "error: account 'signer:clinic': no signer 'clinic' in config.toml [signers] "
        "(configured: hospital)"
    )


def test_a_link_proof_refuses_a_signer_account_instead_of_signing_with_its_data_key(chain, signer):
    from medledger import trials

    participant = load_account(signer.spec(dev_account(5).address, "dev:5"), 31337)
    with pytest.raises(MedLedgerError, match="signed with local keys, not through an external"):
        trials.link_proof(chain, 1, participant, dev_account(6))
