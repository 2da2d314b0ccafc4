"""The money of claims: the token the ClaimsManager pays in, decimal amounts and the token's
smallest units, balances, devnet minting, what the decisions of people credited and its
withdrawal.

Amounts are :class:`~decimal.Decimal` in the token's unit; the chain holds integers of the
smallest unit, converted with the decimals the token itself reports (6 for the devnet dollar and
USDC-like tokens, 18 for DAI-like ones: the token is chosen at deploy time). An automatic
settlement pays the payee at once; the decisions of people (approval, resolution) credit it,
and it withdraws (``medledger claim withdraw-payment``).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from medledger.accounts import dev_account
from medledger.addresses import parse_address
from medledger.chain import deployments, events
from medledger.claims.contract import CONTRACT, manager
from medledger.errors import ConfigurationError, PreconditionFailed
from medledger.providers import recovery

if TYPE_CHECKING:
    from medledger.accounts import Signer
    from medledger.chain import Chain
    from medledger.chain.contracts import Contract
    from medledger.chain.pipeline import Receipt

CENT = Decimal("0.01")


LARGEST = Decimal(10) ** 15
"""No amount a person types comes near it (the token holds less than 2**96 smallest units)."""


def parse_amount(text: str, what: str = "amount") -> Decimal:
    """An amount as typed (``1,250.50``): a finite, non-negative number below :data:`LARGEST`."""
    try:
        value = Decimal(text.replace(",", "").strip())
    except InvalidOperation:
        raise ConfigurationError(what, f"{text!r} is not an amount") from None
    if not value.is_finite() or value < 0:
        raise ConfigurationError(what, f"{text!r} is not a non-negative amount")
    if value >= LARGEST:
        raise ConfigurationError(what, f"{text!r} is too large an amount")
    return value


def token_contract(chain: Chain) -> Contract:
    """The ERC-20 the ClaimsManager pays in (called through the DevStablecoin's ABI, whose
    ERC-20 functions every token answers); cached per connection."""
    if "claims-token" not in chain.cache:
        address = chain.call("reading the token", manager(chain).functions.TOKEN())
        chain.cache["claims-token"] = chain.contract("DevStablecoin", address)
    found: Contract = chain.cache["claims-token"]
    return found


def is_dev_token(chain: Chain) -> bool:
    """True when claims are paid in the devnet's own DevStablecoin (which its deployer mints)."""
    dev = deployments.require(chain).contracts.get(deployments.DEV_TOKEN)
    return chain.is_devnet and dev is not None and dev.address == token_contract(chain).address


def decimals(chain: Chain) -> int:
    """The token's decimals (cached per connection)."""
    if "token-decimals" not in chain.cache:
        token = token_contract(chain)
        chain.cache["token-decimals"] = int(
            chain.call("reading decimals", token.functions.decimals())
        )
    return int(chain.cache["token-decimals"])


def to_units(chain: Chain, amount: Decimal | str | int, what: str = "amount") -> int:
    """Convert a decimal amount to the token's smallest unit; refuse fractions it cannot hold."""
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        raise ConfigurationError(what, f"{amount!r} is not a number") from None
    if not value.is_finite() or value < 0:
        raise ConfigurationError(what, f"{amount} is not a non-negative amount")
    scaled = value.scaleb(decimals(chain))
    if scaled != scaled.to_integral_value():
        raise ConfigurationError(what, f"{amount} has more than {decimals(chain)} decimals")
    units = int(scaled)
    if units >= 2**96:
        raise ConfigurationError(what, f"{amount} is too large")
    return units


def from_units(chain: Chain, units: int) -> Decimal:
    """Convert smallest units to a decimal amount."""
    places = decimals(chain)
    return (Decimal(units).scaleb(-places)).quantize(Decimal(1).scaleb(-places))


def mint(chain: Chain, to: str, amount: Decimal) -> None:
    """Mint devnet dollars (the devnet deployer owns the token; refused elsewhere)."""
    if not is_dev_token(chain):
        raise PreconditionFailed("tokens are minted only on a devnet that pays in DevStablecoin")
    owner = dev_account(0)
    units = to_units(chain, amount)
    chain.transact("minting devnet dollars", owner, token_contract(chain).functions.mint(to, units))


def balance_of(chain: Chain, account: str) -> Decimal:
    """An account's token balance."""
    token = token_contract(chain)
    return from_units(
        chain, int(chain.call("reading the balance", token.functions.balanceOf(account)))
    )


def credit_of(chain: Chain, payee: str) -> Decimal:
    """What is credited to a payee (the decisions of people; automatic settlements are paid at
    once). A patient's credit stays under its id: its controller withdraws it
    (:func:`withdrawable`)."""
    value = chain.call(
        "reading the credit", manager(chain).functions.creditOf(parse_address(payee))
    )
    return from_units(chain, int(value))


def withdrawable(chain: Chain, account: str) -> Decimal:
    """What ``account`` can withdraw, as the contract decides: its own credit unless it is a
    replaced or frozen patient key, and, for a patient's controller, the patient's credit."""
    account = parse_address(account)
    patient = recovery.patient_of(chain, account)
    own = patient == account or recovery.controller_of(chain, account) == account
    total = credit_of(chain, account) if own else Decimal(0)
    if patient not in (None, account):
        total += credit_of(chain, patient)
    return total


def withdraw(chain: Chain, account: Signer) -> tuple[Decimal, Receipt]:
    """Withdraw everything credited to the account's institution (or to the patient it
    controls)."""
    if withdrawable(chain, account.address) == 0:
        raise PreconditionFailed(
            f"nothing is credited to {account.address} for it to withdraw (automatic "
            "settlements are paid at once; a patient's credit goes to the key that controls it now)"
        )
    contract = manager(chain)
    receipt = chain.transact(
        "withdrawing the payment", account, contract.functions.withdrawPayment()
    )
    withdrawn = events.from_receipt(receipt, CONTRACT, "PaymentWithdrawn", contract.address)
    return from_units(chain, sum(int(event["amount"]) for event in withdrawn)), receipt
