"""The FHIR gateway (issue #17): ``medledger serve`` as a subprocess on a free loopback port,
driven over HTTP with one keep-alive session, signed in with Ethereum as a wallet signs.

- create: ``POST /fhir`` of a transaction Bundle of 100 lab Observations, records/s; in the same
  run, the same 100 resources for a second patient through ``medledger anchor --batch`` (a new
  process, as a user runs it) and through :func:`medledger.intake.anchor_fhir` (the package
  call that command makes, without its start-up). The POSTs fill the patient's records.
- search: ``GET /Observation?patient=...&_count=100`` (the first page) over all of them.
- read: ``GET /Observation/{id}`` as the institution (nothing logged), and as a grantee (a
  doctor of another institution with the patient's lab grant: each read logs on chain).

Latencies are medians of repeated requests after one untimed warm-up request.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medledger.benchmarks.startup import command

if TYPE_CHECKING:
    from collections.abc import Callable

    import requests

    from medledger.accounts import Signer
    from medledger.benchmarks.harness import World

BUNDLE = 100  # entries per POSTed transaction Bundle
FHIR_JSON = "application/fhir+json"
GRANTEE_READ = "read one record (grantee, logged on chain)"


@dataclass
class Running:
    """A ``medledger serve`` subprocess and a keep-alive HTTP session to it."""

    url: str
    process: subprocess.Popen[str]
    http: requests.Session

    def sign_in(self, account: Signer, scope: str) -> dict[str, str]:
        """Headers carrying a bearer token for ``account`` (``medledger sign-in``'s path:
        EIP-4361 challenge, EIP-191 signature as a wallet's ``personal_sign``)."""
        from medledger.gateway.signin import sign_in

        token = sign_in(self.url, account, scope)
        return {"Authorization": f"Bearer {token['access_token']}", "Accept": FHIR_JSON}

    def get(self, path: str, headers: dict[str, str], **params: str) -> dict[str, Any]:
        return self._ok(self.http.get(f"{self.url}/fhir/{path}", headers=headers, params=params))

    def post(self, body: bytes, headers: dict[str, str], patient: str) -> dict[str, Any]:
        sent = {**headers, "Content-Type": FHIR_JSON}
        return self._ok(self.http.post(f"{self.url}/fhir", data=body, headers=sent,
                                       params={"patient": patient}))  # fmt: skip

    @staticmethod
    def _ok(response: requests.Response) -> dict[str, Any]:
        if response.status_code != 200:
            raise RuntimeError(f"the gateway answered {response.status_code}: "
                               f"{response.text[:300]}")  # fmt: skip
        answer: dict[str, Any] = response.json()
        return answer


def start(env: dict[str, str], account: str) -> Running:
    """``medledger serve --account ACCOUNT --port 0`` on 127.0.0.1, once it answers
    ``/fhir/metadata`` (the tests start it this way too)."""
    from medledger.httpsession import session_for

    process = subprocess.Popen(
        [*command(), "serve", "--account", account, "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("serving FHIR R4 at "):
        process.kill()
        raise RuntimeError(f"medledger serve did not start: {line}{process.communicate()[1]}")
    url = line.split(" at ", 1)[1].split("/fhir", 1)[0]
    http = session_for(url)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if http.get(f"{url}/fhir/metadata", timeout=5).status_code == 200:
                return Running(url, process, http)
        except OSError:
            time.sleep(0.05)
    stop(Running(url, process, http))
    raise RuntimeError("medledger serve did not answer /fhir/metadata within 30 s")


def stop(running: Running) -> str:
    """Stop the server; its standard error."""
    running.http.close()
    running.process.terminate()
    try:
        return running.process.communicate(timeout=20)[1]
    except subprocess.TimeoutExpired:
        running.process.kill()
        return running.process.communicate()[1]


def measure(world: World, quick: bool, runs: int) -> dict[str, Any]:
    """The gateway's figures over ``200`` (quick) or ``1,000`` records of one patient."""
    from medledger import providers

    doctor = _grantee(world)
    providers.authorize_care(world.chain, world.reader, world.reader.address,
                             world.hospital.address, None)  # fmt: skip
    bundles = 2 if quick else 10
    repeat = max(runs, 5 if quick else 30)
    running = start(world.env(), "dev:3")
    try:
        hospital = running.sign_in(world.hospital, "user/*.cruds")
        posts, commands, package = _create(world, running, hospital, bundles)
        page = running.get("Observation", hospital, patient=world.patient.address, _count="100")
        if page.get("total") != bundles * BUNDLE or len(page.get("entry", [])) != BUNDLE:
            raise RuntimeError(f"the search found {page.get('total')} records, not "
                               f"{bundles * BUNDLE}")  # fmt: skip
        one = page["entry"][0]["resource"]["id"]
        search = _timed(repeat, lambda: running.get(
            "Observation", hospital, patient=world.patient.address, _count="100"))  # fmt: skip
        read = _timed(repeat, lambda: running.get(f"Observation/{one}", hospital))
        try:  # a grantee's read logs on chain; when it fails, the other figures still stand
            as_doctor = running.sign_in(doctor, "user/Observation.rs")
            granted = _timed(max(runs, 5 if quick else 10),
                             lambda: running.get(f"Observation/{one}", as_doctor))  # fmt: skip
        except RuntimeError as error:
            granted, refused = [], str(error)
    except RuntimeError as error:
        raise RuntimeError(f"{error} ({_last_words(stop(running))})") from None
    last_words = _last_words(stop(running))
    grantee = _row(GRANTEE_READ, granted) if granted else {
        "measurement": GRANTEE_READ, "error": f"{refused[:200]} ({last_words})"}  # fmt: skip
    post_rate = BUNDLE / statistics.median(posts)
    cli_rate = BUNDLE / statistics.median(commands)
    package_rate = BUNDLE / statistics.median(package)
    return {
        "records": bundles * BUNDLE,
        "rows": [
            _row("search: first page of 100 (institution)", search),
            _row("read one record (institution)", read),
            grantee,
            _row(f"POST transaction Bundle of {BUNDLE}", posts, BUNDLE),
            _row(f"medledger anchor --batch of the same {BUNDLE}", commands, BUNDLE),
            _row(f"intake.anchor_fhir (batch) of the same {BUNDLE}", package, BUNDLE),
        ],
        "post_vs_anchor_command": round(post_rate / cli_rate, 2),
        "post_vs_anchor_package": round(post_rate / package_rate, 2),
    }


def _last_words(stderr: str) -> str:
    said = [line for line in stderr.splitlines() if line.strip()]
    return f"the server's last words: {said[-1] if said else '-'}"


def _create(
    world: World, running: Running, headers: dict[str, str], bundles: int
) -> tuple[list[float], list[float], list[float]]:
    """Per Bundle: seconds of its POST, of ``medledger anchor --batch`` of the same resources
    for the second patient (a new process), and of the package call that command makes (for a
    third copy, made distinct by its patient named in the text)."""
    from medledger import fhir, intake

    posts, commands, package = [], [], []
    folder = Path(tempfile.mkdtemp(prefix="gateway-", dir=world.settings.home))
    anchor = [*command(), "anchor", "--patient", world.reader.address, "--account", "dev:3",
              "--batch", "--json"]  # fmt: skip
    for i in range(bundles):
        body = _bundle(i)
        t0 = time.perf_counter()
        answer = running.post(body, headers, world.patient.address)
        posts.append(time.perf_counter() - t0)
        created = [e["response"]["status"] for e in answer["entry"]]
        if created != ["201 Created"] * BUNDLE:
            raise RuntimeError(f"the POST of Bundle {i} created {created.count('201 Created')}")
        path = folder / f"bundle-{i}.json"
        path.write_bytes(body)
        t0 = time.perf_counter()
        done = subprocess.run([*anchor, str(path)], env=world.env(), capture_output=True,
                              text=True, check=False)  # fmt: skip
        commands.append(time.perf_counter() - t0)
        if done.returncode != 0 or len(json.loads(done.stdout)) != BUNDLE:
            raise RuntimeError(f"medledger anchor failed: {done.stderr.strip()[:300]}")
        copy = body.replace(b'"glucose ', b'"glucose (package) ')
        t0 = time.perf_counter()
        made = intake.anchor_fhir(world.chain, world.home_store(), world.hospital,
                                  world.reader.address, [("bench", fhir.load(copy, "bench"))],
                                  batch=True)  # fmt: skip
        package.append(time.perf_counter() - t0)
        if len(made.records) - len(made.skipped) != BUNDLE:
            raise RuntimeError("intake.anchor_fhir did not anchor the whole Bundle")
    return posts, commands, package


def _bundle(index: int) -> bytes:
    """A transaction Bundle of :data:`BUNDLE` distinct lab Observations (whose they are is
    said by the request: ``?patient=``, ``--patient``)."""
    entries = [{
        "fullUrl": f"urn:uuid:00000000-0000-4000-8000-{index:06d}{n:06d}",
        "resource": {
            "resourceType": "Observation", "status": "final",
            "category": [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                "code": "laboratory"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}],
                     "text": f"glucose {index}-{n}"},
            "valueQuantity": {"value": 70 + n % 60, "unit": "mg/dL"},
        },
        "request": {"method": "POST", "url": "Observation"},
    } for n in range(BUNDLE)]  # fmt: skip
    document = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    return json.dumps(document).encode()


def _grantee(world: World) -> Signer:
    """A doctor (dev:6) of a verified clinic (dev:4), with a published key and the patient's
    grant of lab records (given before the records exist, so it reads every one)."""
    from datetime import timedelta

    from medledger import consent, providers
    from medledger.accounts import dev_account
    from medledger.categories import Category

    chain, clinic, doctor = world.chain, dev_account(4), dev_account(6)
    providers.apply_institution(chain, clinic, providers.InstitutionKind.CLINIC, "Bench clinic")
    providers.approve_institution(chain, dev_account(0), clinic.address)
    providers.add_practitioner(chain, clinic, doctor.address)
    providers.accept_practitioner(chain, doctor, clinic.address)
    providers.publish_key(chain, doctor)
    consent.grant(
        chain, world.home_store(), world.patient, world.patient.address, doctor.address,
        consent.Scope(consent.ScopeKind.CATEGORY, category=Category.LAB),
        consent.Purpose.TREATMENT, timedelta(days=30),
    )  # fmt: skip
    return doctor


def _timed(repeat: int, call: Callable[[], object]) -> list[float]:
    """Seconds of ``repeat`` calls, after one untimed warm-up call."""
    call()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return times


def _row(what: str, times: list[float], records: int | None = None) -> dict[str, Any]:
    median = statistics.median(times)
    row: dict[str, Any] = {
        "measurement": what, "runs": len(times), "median_ms": round(median * 1e3, 1),
        "spread_ms": [round(min(times) * 1e3, 1), round(max(times) * 1e3, 1)],
    }  # fmt: skip
    if records:
        row["records_per_second"] = round(records / median, 1)
    return row
