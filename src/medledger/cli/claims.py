"""``medledger policy ...`` and ``medledger claim ...``: insurance (thin commands over
``medledger.claims``).

A claim is named by its id, which is its claim record's id: ``0x`` and 64 hex digits as every
command prints it (the same number in decimal is accepted too).
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from medledger.cli.support import (
    ADDRESS,
    OUTPUT,
    DurationType,
    Session,
    common,
    pass_session,
    write_output,
)
from medledger.errors import ConfigurationError

if TYPE_CHECKING:
    from decimal import Decimal

    from medledger import claims as claims_module


def _amount(text: str, option: str) -> Decimal:
    from medledger.claims.money import parse_amount

    return parse_amount(text, option)


def _fraction(text: str) -> Decimal:
    """``80%``, ``80`` or ``0.8`` -> 0.8."""
    raw = text.strip().removesuffix("%")
    value = _amount(raw, "--coverage")
    return value / 100 if text.strip().endswith("%") or value > 1 else value


def _record_ids(values: tuple[str, ...]) -> list[bytes]:
    from medledger.records import RecordRef

    return [RecordRef.parse(v).id for v in values]


def _claim_id(text: str) -> int:
    from medledger import claims

    return claims.parse_claim_id(text)


def _policy_text(p: claims_module.Policy) -> str:
    return "\n".join(
        [
            f"policy {p.id}: insurer {p.insurer}, patient {p.patient}",
            f"  cover {p.valid_from:%F} to {p.valid_until:%F}, {p.coverage * 100:.2f} % after a "
            f"deductible of {p.deductible} ({p.deductible_met} met)",
            f"  annual limit {p.annual_limit} ({p.paid} paid), automatic settlement up to "
            f"{p.auto_settle_limit or 'never'}",
            f"  pool {p.pool} left of {p.funded} funded, {p.open_claims} open claim(s); "
            f"terms {p.terms_cid}",
        ]
        + (["  pays only patients attested by the claim's care provider"] * p.attestation_required)
    )


def _claim_text(c: claims_module.Claim) -> str:
    payee = "the patient" if c.pay_patient else f"the provider {c.submitter}"
    if c.automatic:
        how = " (settled automatically: paid at once, nothing to withdraw)"
    elif c.paid > 0:
        how = " (credited: the payee runs `medledger claim withdraw-payment`)"
    else:
        how = ""
    lines = [
        f"claim {c.hex_id} on policy {c.policy_id}: {c.state.label}{how}",
        f"  billed {c.billed}, paid {c.paid} to {payee}, deductible applied {c.deductible_applied}",
        f"  claim record {c.hex_id}; {len(c.evidence)} more evidence record(s)",
    ]
    if not c.automatic and c.state.label in ("submitted", "info-requested"):
        lines.append(
            f"  waiting for review: {c.review.label}"
            + (f"; information asked {c.info_requests} time(s)" if c.info_requests else "")
        )
    for h in c.history:
        gas = f"{h.gas_used:,} gas" if h.gas_used is not None else ""
        lines.append(f"  {h.time:%F %H:%M:%S}  {h.event:22} {h.actor[:12]}...  {h.detail}  {gas}")
    return "\n".join(lines)


# --- policy --------------------------------------------------------------------------------------


@click.group()
def policy() -> None:
    """Insurance policies: issue, fund, show, take back an ended policy's pool."""


@policy.command("issue")
@click.option("--patient", required=True, type=ADDRESS, help="The insured patient's address.")
@click.option(
    "--coverage", default="80%", show_default=True, help="Share paid above the deductible."
)
@click.option("--deductible", default="0", show_default=True, help="Paid by the patient first.")
@click.option("--limit", "annual_limit", required=True, help="Most the policy pays over its term.")
@click.option(
    "--auto-settle-limit",
    default="0",
    show_default=True,
    help="Claims billed at most this much settle automatically (0: never).",
)
@click.option(
    "--code",
    "codes",
    multiple=True,
    required=True,
    help="A covered procedure code: SYSTEM|CODE, e.g. http://snomed.info/sct|410620009 (repeat).",
)
@click.option("--term", default="365d", show_default=True, type=DurationType(timedelta(days=366)),
              help="How long it runs (at most 366d).")  # fmt: skip
@click.option("--currency", default="USD", show_default=True, help="Currency of the claims.")
@click.option("--plan", default="", help="A plan name kept in the sealed terms.")
@click.option("--require-attested", is_flag=True,
              help="Pay only claims whose care provider attests the patient's identity "
                   "(medledger patient attest).")  # fmt: skip
@common
@pass_session
def policy_issue(
    session: Session,
    patient: str,
    coverage: str,
    deductible: str,
    annual_limit: str,
    auto_settle_limit: str,
    codes: tuple[str, ...],
    term: timedelta,
    currency: str,
    plan: str,
    require_attested: bool,
) -> None:
    """Issue a policy to a patient (the --account is a verified insurer)."""
    from medledger import claims
    from medledger.ipfs.stores import open_store

    issued = claims.issue_policy(
        session.chain,
        open_store(session.settings),
        session.account(),
        patient,
        coverage=_fraction(coverage),
        deductible=_amount(deductible, "--deductible"),
        annual_limit=_amount(annual_limit, "--limit"),
        auto_settle_limit=_amount(auto_settle_limit, "--auto-settle-limit"),
        codes=[claims.Code.parse(c) for c in codes],
        term=term,
        currency=currency,
        plan=plan,
        require_attested=require_attested,
    )
    session.emit(issued.as_dict(), _policy_text(issued))


@policy.command("fund")
@click.argument("policy_id", type=int)
@click.argument("amount")
@common
@pass_session
def policy_fund(session: Session, policy_id: int, amount: str) -> None:
    """Pay AMOUNT tokens into a policy's pool (a devnet's DevStablecoin mints what is missing)."""
    from medledger import claims

    funded = claims.fund_policy(
        session.chain, session.account(), policy_id, _amount(amount, "AMOUNT")
    )
    session.emit(funded.as_dict(), _policy_text(funded))


@policy.command("show")
@click.argument("policy_id", type=int, required=False)
@click.option("--patient", type=ADDRESS, help="List the policies of this patient.")
@click.option("--terms", is_flag=True, help="Decrypt the terms (insurer or patient only).")
@click.option("--out", type=OUTPUT, help="Write the terms here.")
@common
@pass_session
def policy_show(
    session: Session, policy_id: int | None, patient: str | None, terms: bool, out: Path | None
) -> None:
    """Show a policy (or list them); with --terms, its covered codes and salt for a provider."""
    from medledger import claims
    from medledger.ipfs.stores import open_store

    chain = session.chain
    if policy_id is None:
        found = claims.policies(chain, patient=patient)
        session.emit(
            [p.as_dict() for p in found], "\n".join(_policy_text(p) for p in found) or "no policies"
        )
        return
    shown = claims.get_policy(chain, policy_id)
    if not terms:
        session.emit(shown.as_dict(), _policy_text(shown))
        return
    document = claims.read_terms(chain, open_store(session.settings), session.account(), shown)
    data = json.dumps(document.to_json(), indent=2).encode() + b"\n"
    if out is not None:
        out.write_bytes(data)
        out.chmod(0o600)  # the salt protects the code list: keep the file private
        session.emit({"file": str(out)}, f"terms of policy {policy_id} written to {out}")
    else:
        write_output(data, None)


@policy.command("reclaim")
@click.argument("policy_id", type=int)
@common
@pass_session
def policy_reclaim(session: Session, policy_id: int) -> None:
    """Take back an ended policy's unspent pool (the insurer's own account).

    Possible once the term has ended, no claim is open and the last decision's dispute window
    is over.
    """
    from medledger import claims

    chain = session.chain
    account = session.account()
    amount, receipt = claims.reclaim_pool(chain, account, policy_id)
    balance = claims.balance_of(chain, account.address)
    session.emit(
        {"policy": policy_id, "reclaimed": str(amount), "balance": str(balance),
         "gas": receipt.gas_used},
        f"took back {amount} from policy {policy_id}; {account.address} now holds {balance}",
    )  # fmt: skip


# --- claim ---------------------------------------------------------------------------------------


@click.group()
def claim() -> None:
    """Insurance claims: submit, review, decide, dispute, escalate, get paid."""


@claim.command("submit")
@click.argument("claim_file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--policy", "policy_id", type=int, required=True, help="The policy claimed against.")
@click.option(
    "--record",
    "record_id",
    help="Submit this anchored claim record (a Financial record a care provider wrote) instead "
    "of a CLAIM_FILE; how the insured patient submits.",
)
@click.option("--evidence", multiple=True, help="An evidence record id (repeat).")
@click.option(
    "--terms",
    "terms_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The policy terms the patient gave you (a patient or insurer can omit it).",
)
@click.option(
    "--consent",
    "consents",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A grant the patient signed for the insurer (`medledger grant --sign-only`); submitted "
    "first (repeat).",
)
@click.option(
    "--pay-to",
    type=click.Choice(["provider", "patient"]),
    default="provider",
    show_default=True,
    help="Who is paid.",
)
@common
@pass_session
def claim_submit(
    session: Session,
    claim_file: Path | None,
    policy_id: int,
    record_id: str | None,
    evidence: tuple[str, ...],
    terms_file: Path | None,
    consents: tuple[Path, ...],
    pay_to: str,
) -> None:
    """Submit a FHIR Claim with its evidence: a care provider gives CLAIM_FILE (anchored as its
    Financial record for the patient, then submitted); or --record names an anchored claim
    record (the patient submits one its provider wrote). The same care, or the same claim
    identifier, is refused if it was claimed before."""
    from medledger import claims, consent, documents
    from medledger.ipfs.stores import open_store

    if (claim_file is None) == (record_id is None):
        raise ConfigurationError(
            "CLAIM_FILE", "give a FHIR Claim file or --record ID (one of them)"
        )
    body = None
    if claim_file is not None:
        try:
            body = claim_file.read_bytes()
        except OSError as exc:
            raise ConfigurationError(str(claim_file), f"cannot be read ({exc.strerror})") from None
    record = _record_ids((record_id,))[0] if record_id is not None else None
    evidence_ids = _record_ids(evidence)
    terms = None
    if terms_file is not None:
        terms = claims.Terms.from_json(documents.read_object(terms_file), str(terms_file))
    signed = [documents.read_object(file) for file in consents]
    chain = session.chain
    store = open_store(session.settings)
    account = session.account()
    if body is not None:
        claims.claim_facts(body, str(claim_file))  # the file is checked before any chain read
        earlier = claims.submitted_before(
            chain, store, account, claims.get_policy(chain, policy_id), body
        )
        if earlier is not None:  # a re-run of a submission that reached the chain
            session.emit(
                {**earlier.as_dict(), "already_submitted": True},
                _claim_text(earlier) + "\n(already submitted: nothing was written again)",
            )
            return
    for document in signed:
        consent.submit_signed_grant(chain, store, account, document)
    submitted = claims.submit_claim(
        chain,
        store,
        account,
        policy_id,
        body,
        record=record,
        evidence=evidence_ids,
        terms=terms,
        pay_patient=pay_to == "patient",
        source=str(claim_file) if claim_file is not None else f"record {record_id}",
    )
    session.emit(submitted.as_dict(), _claim_text(submitted))


@claim.command("show")
@click.argument("claim_id")
@click.option("--fhir", is_flag=True, help="Print the FHIR ClaimResponse (and EOB once paid).")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="With --fhir: write ClaimResponse.json (and ExplanationOfBenefit.json) here.",
)
@common
@pass_session
def claim_show(session: Session, claim_id: str, fhir: bool, out: Path | None) -> None:
    """Show a claim and every step of its life (with gas); --fhir as FHIR resources."""
    from medledger import claims
    from medledger.ipfs.stores import open_store

    number = _claim_id(claim_id)
    chain = session.chain
    if not fhir:
        shown = claims.get_claim(chain, number, with_history=True)
        session.emit(shown.as_dict(), _claim_text(shown))
        return
    documents = claims.fhir_documents(
        chain, open_store(session.settings), session.account(), number
    )
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for name, body in documents.items():
            (out / f"{name}.json").write_bytes(body + b"\n")
        session.emit({"files": sorted(documents)}, f"wrote {', '.join(sorted(documents))} to {out}")
        return
    if len(documents) == 1:
        write_output(documents["ClaimResponse"] + b"\n", None)
        return
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": json.loads(b)} for b in documents.values()],
    }
    write_output(json.dumps(bundle, indent=2).encode() + b"\n", None)


@claim.command("list")
@click.option("--policy", "policy_id", type=int, help="Only this policy's claims.")
@click.option(
    "--submitter", type=ADDRESS, help="Only claims this institution (or patient) submitted."
)
@click.option("--state", help="Only claims in this state (submitted, approved, denied...).")
@common
@pass_session
def claim_list(
    session: Session, policy_id: int | None, submitter: str | None, state: str | None
) -> None:
    """List claims."""
    from medledger import claims

    wanted = None
    if state is not None:
        try:
            wanted = claims.ClaimState[state.strip().upper().replace("-", "_")]
        except KeyError:
            names = ", ".join(s.label for s in claims.ClaimState if s.value)
            raise ConfigurationError(
                "--state", f"unknown state {state!r} (one of: {names})"
            ) from None
    found = claims.claims(session.chain, policy_id, submitter, wanted)
    text = "\n".join(
        f"{c.hex_id}  policy {c.policy_id:<4} {c.state.label:19} billed {c.billed:>12}  "
        f"paid {c.paid:>12}  {c.submitter}"
        for c in found
    )
    session.emit([c.as_dict() for c in found], text or "no claims")


@claim.command("review")
@click.argument("claim_id")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the decrypted evidence here (one JSON file per record).",
)
@common
@pass_session
def claim_review(session: Session, claim_id: str, out: Path | None) -> None:
    """As the insurer, fetch, verify and decrypt the claim's consented evidence."""
    from medledger import claims, fhir
    from medledger.ipfs.stores import open_store

    number = _claim_id(claim_id)
    chain = session.chain
    shown, evidence = claims.review(chain, open_store(session.settings), session.account(), number)
    allowed, deductible = claims.allowed_amount(chain, number)
    rows: list[dict[str, str]] = []
    for item in evidence:
        rows.append(
            {
                "record": item.record.hex_id,
                "category": item.record.category_label,
                "summary": fhir.summary(item.body),
                "bytes": str(len(item.body)),
            }
        )
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            (out / f"{item.record.hex_id}.json").write_bytes(item.body)
    text = "\n".join(
        [_claim_text(shown), f"  the policy allows {allowed} now (deductible {deductible})"]
        + [f"  evidence {r['record'][:18]}...  {r['category']:10} {r['summary']}" for r in rows]
    )
    session.emit({"claim": shown.as_dict(), "allowed": str(allowed), "evidence": rows}, text)


@claim.command("approve")
@click.argument("claim_id")
@click.option(
    "--amount",
    help="Approve in part: this much (default: all the policy allows); 0 only for a claim "
    "within the deductible, which then counts toward it.",
)
@common
@pass_session
def claim_approve(session: Session, claim_id: str, amount: str | None) -> None:
    """Approve a claim in full or in part (insurer); the payee withdraws what is credited."""
    from medledger import claims

    number = _claim_id(claim_id)
    value = _amount(amount, "--amount") if amount is not None else None
    decided = claims.approve(session.chain, session.account(), number, value)
    session.emit(decided.as_dict(), _claim_text(decided))


def _reason_option(function: Any) -> Any:
    return click.option(
        "--reason",
        required=True,
        help="A reason code: not-covered, policy-inactive, duplicate, documentation-missing, "
        "not-medically-necessary, limit-reached, coding-error, amount-disputed, "
        "decision-disputed, other (or its number).",
    )(function)


@claim.command("deny")
@click.argument("claim_id")
@_reason_option
@common
@pass_session
def claim_deny(session: Session, claim_id: str, reason: str) -> None:
    """Deny a claim with a reason code (insurer)."""
    from medledger import claims

    number, code = _claim_id(claim_id), claims.ReasonCode.parse(reason)
    decided = claims.deny(session.chain, session.account(), number, code)
    session.emit(decided.as_dict(), _claim_text(decided))


@claim.command("request-info")
@click.argument("claim_id")
@_reason_option
@common
@pass_session
def claim_request_info(session: Session, claim_id: str, reason: str) -> None:
    """Ask the submitter for more information (insurer; at most 3 times a claim)."""
    from medledger import claims

    number, code = _claim_id(claim_id), claims.ReasonCode.parse(reason)
    asked = claims.request_info(session.chain, session.account(), number, code)
    session.emit(asked.as_dict(), _claim_text(asked))


@claim.command("provide-info")
@click.argument("claim_id")
@click.option("--evidence", multiple=True, required=True, help="An added evidence record (repeat).")
@common
@pass_session
def claim_provide_info(session: Session, claim_id: str, evidence: tuple[str, ...]) -> None:
    """Answer a request for information with more evidence (submitter or patient)."""
    from medledger import claims
    from medledger.ipfs.stores import open_store

    number, added = _claim_id(claim_id), _record_ids(evidence)
    answered = claims.provide_info(
        session.chain, open_store(session.settings), session.account(), number, added
    )
    session.emit(answered.as_dict(), _claim_text(answered))


@claim.command("dispute")
@click.argument("claim_id")
@_reason_option
@common
@pass_session
def claim_dispute(session: Session, claim_id: str, reason: str) -> None:
    """Dispute a partial approval or a denial (submitter or patient, within the window)."""
    from medledger import claims

    number, code = _claim_id(claim_id), claims.ReasonCode.parse(reason)
    disputed = claims.dispute(session.chain, session.account(), number, code)
    session.emit(disputed.as_dict(), _claim_text(disputed))


@claim.command("escalate")
@click.argument("claim_id")
@common
@pass_session
def claim_escalate(session: Session, claim_id: str) -> None:
    """Send a claim the insurer left undecided to a resolver (submitter or patient): 30 days
    after submission, or at once when the insurer is no longer verified."""
    from medledger import claims

    escalated = claims.escalate(session.chain, session.account(), _claim_id(claim_id))
    session.emit(escalated.as_dict(), _claim_text(escalated))


@claim.command("resolve")
@click.argument("claim_id")
@click.option("--award", default="0", show_default=True, help="Paid on top (0 upholds).")
@click.option(
    "--uncovered",
    is_flag=True,
    help="The care is not covered (a claim paid nothing: no award, no deductible applied).",
)
@common
@pass_session
def claim_resolve(session: Session, claim_id: str, award: str, uncovered: bool) -> None:
    """Resolve a dispute or an escalated claim (a resolver); the award is credited."""
    from medledger import claims

    number, value = _claim_id(claim_id), _amount(award, "--award")
    resolved = claims.resolve(session.chain, session.account(), number, value, not uncovered)
    session.emit(resolved.as_dict(), _claim_text(resolved))


@claim.command("withdraw-payment")
@common
@pass_session
def claim_withdraw_payment(session: Session) -> None:
    """Withdraw what the decisions of people credited to the --account (the institution, or
    the patient: through the key that controls it now); automatic settlements are paid at
    once."""
    from medledger import claims

    chain = session.chain
    account = session.account()
    amount, receipt = claims.withdraw(chain, account)
    balance = claims.balance_of(chain, account.address)
    session.emit(
        {"withdrawn": str(amount), "balance": str(balance), "gas": receipt.gas_used},
        f"withdrew {amount}; {account.address} now holds {balance}",
    )


@claim.command("add-resolver")
@click.argument("address", type=ADDRESS)
@common
@pass_session
def claim_add_resolver(session: Session, address: str) -> None:
    """Give ADDRESS the resolver role (the ClaimsManager's admin, the deployer)."""
    from medledger import claims

    claims.add_resolver(session.chain, session.account(), address)
    session.emit({"resolver": address}, f"{address} may now resolve disputes")
