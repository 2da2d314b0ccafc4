"""The money a FHIR ``Claim`` states, checked before anything is stored or sent.

Refused, each in one line naming the place (``item[1].net``, ``total``):

- a money ``value`` that is not a JSON number (``"100.00"`` in quotes is not FHIR);
- a currency that is not a three-letter ISO 4217 code, or more than one currency in one Claim
  (STU3's ``Money.code`` is read as the currency; a Claim naming none is in USD);
- more decimals than the currency's minor unit (``12.3456789`` USD): an amount is never
  rounded silently. Only binary-float noise (a difference under a billionth of the value, as
  exports such as Synthea write ``410.20000000000005``) is read as the amount it stands for;
- an item whose ``net`` is not ``quantity * unitPrice * factor`` (to the minor unit) when it
  gives a ``unitPrice`` (``quantity`` and ``factor`` default to 1); an item with a
  ``unitPrice`` and no ``net`` is billed that product;
- item nets that do not add up to the ``total``: when every item is priced the sum must equal
  it; when some are not (Synthea prices the encounter line in the total only) the priced ones
  must not exceed it. Without a ``total`` the Claim bills the sum of its items;
- a total that is not more than zero.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from medledger.errors import FhirStructureError

DEFAULT_CURRENCY = "USD"
LARGEST = Decimal("1e15")  # no amount, quantity or factor of a claim comes near it
NOISE = Decimal("1e-9")  # relative difference still read as binary-float noise

# ISO 4217 minor units that are not 2 (every other code has cents).
_MINOR_UNITS = {
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF",
                     "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    "CLF": 4, "UYW": 4,
}  # fmt: skip
_CODE = re.compile(r"[A-Z]{3}")


def minor_unit(currency: str) -> int:
    """The decimals of a currency (ISO 4217): 2 for most, 0 for JPY, 3 for KWD..."""
    return _MINOR_UNITS.get(currency, 2)


def is_currency(code: object) -> bool:
    """Whether ``code`` has the form of an ISO 4217 code (three capital letters)."""
    return isinstance(code, str) and _CODE.fullmatch(code) is not None


@dataclass(frozen=True)
class ClaimAmount:
    """What a Claim bills: the total (exact, in the currency's minor unit) and the currency."""

    total: Decimal
    currency: str


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source
        self.currencies: dict[str, str] = {}  # currency -> where first seen

    def refuse(self, problem: str) -> FhirStructureError:
        return FhirStructureError(self.source, problem)

    def number(self, value: object, where: str) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
            shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
            raise self.refuse(f"{where} {shown} is not a JSON number (FHIR writes it unquoted)")
        number = Decimal(value)
        if not number.is_finite() or abs(number) >= LARGEST:
            raise self.refuse(f"{where} {value} is too large to be an amount")
        return number

    def money(self, money: object, where: str) -> Decimal | None:
        """The value of a Money element (``None`` when absent or valueless)."""
        if money is None:
            return None
        if not isinstance(money, dict):
            raise self.refuse(f"{where} is not a Money object")
        code = money.get("currency", money.get("code"))
        if code is not None:
            if not is_currency(code):
                raise self.refuse(f"{where}.currency {code!r} is not a three-letter ISO 4217 code")
            self.currencies.setdefault(code, where)
        if "value" not in money:
            return None
        return self.number(money["value"], f"{where}.value")

    def currency(self) -> str:
        if len(self.currencies) > 1:
            raise self.refuse(f"the Claim mixes currencies: {', '.join(sorted(self.currencies))}")
        return next(iter(self.currencies), DEFAULT_CURRENCY)


def _exact(value: Decimal, places: int, where: str, currency: str, source: str) -> Decimal:
    """``value`` in the currency's minor unit, or a refusal: never rounded but for float noise."""
    step = Decimal(1).scaleb(-places)
    rounded = value.quantize(step)
    if rounded != value and abs(rounded - value) > NOISE * max(abs(value), Decimal(1)):
        raise FhirStructureError(
            source,
            f"{where} {value} has more decimals than {currency} allows ({places}): "
            "amounts are not rounded, write the exact amount",
        )
    return rounded


def claim_amount(resource: dict[str, Any], source: str = "claim") -> ClaimAmount:
    """Read and check the money of a FHIR ``Claim`` parsed with ``parse_float=Decimal``."""
    reader = _Reader(source)
    items = resource.get("item") or []
    if not isinstance(items, list):
        raise reader.refuse("Claim.item is not an array")
    raw: list[tuple[str, Decimal | None, Decimal | None]] = []  # where, net, expected net
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            raise reader.refuse(f"item[{n}] is not an object")
        net = reader.money(item.get("net"), f"item[{n}].net")
        price = reader.money(item.get("unitPrice"), f"item[{n}].unitPrice")
        expected = None
        if price is not None:
            quantity = item.get("quantity")
            count = Decimal(1)
            if isinstance(quantity, dict) and "value" in quantity:
                count = reader.number(quantity["value"], f"item[{n}].quantity.value")
            factor = Decimal(1)
            if "factor" in item:
                factor = reader.number(item["factor"], f"item[{n}].factor")
            expected = count * price * factor
        raw.append((f"item[{n}]", net, expected))
    total = reader.money(resource.get("total"), "total")
    currency = reader.currency()
    places = minor_unit(currency)

    def exact(value: Decimal, where: str) -> Decimal:
        return _exact(value, places, where, currency, source)

    nets: list[Decimal] = []
    unpriced = 0
    for where, net, expected in raw:
        if net is not None:
            net = exact(net, f"{where}.net")
        if expected is not None:
            due = expected.quantize(Decimal(1).scaleb(-places))
            if net is None:
                net = due
            elif net != due:
                raise reader.refuse(
                    f"{where}.net is {net} but quantity * unitPrice * factor is {due} {currency}"
                )
        if net is None:
            unpriced += 1
        else:
            nets.append(net)
    summed = sum(nets, Decimal(0))
    if total is not None:
        amount = exact(total, "total")
        if unpriced == 0 and nets and summed != amount:
            raise reader.refuse(
                f"the item nets add up to {summed} {currency} but the total is {amount}: "
                "correct the items or the total"
            )
        if summed > amount:
            raise reader.refuse(
                f"the priced items alone come to {summed} {currency}, more than the total of "
                f"{amount}"
            )
    elif nets:
        amount = summed
    else:
        raise reader.refuse("the Claim has no total and no item net amounts")
    if amount <= 0:
        raise reader.refuse("the Claim's total must be more than zero")
    return ClaimAmount(amount, currency)
