"""The leg grammar, in one place: how an order tradectl sends names itself at IB.

Every such order carries ``orderRef = tctl:<rule>:<generation>:<leg>`` (docs/planning.md,
"Identity: orderRefs and intent keys"). The form of the leg says which kind of rule sent it and
what the order is for:

| kind        | legs                 | entry (adds to the position) | protective (exits it) |
| ----------- | -------------------- | ---------------------------- | --------------------- |
| brackets    | ``entry``            | yes                          |                       |
| brackets    | ``stop``, ``target`` |                              | yes                   |
| scales      | ``L1`` … ``Ln``      | yes                          |                       |
| allocations | ``<SYMBOL>.<hex>``   | (a rebalancing trade: neither)                       |
| (none)      | ``fx.<CCY>.<hex>``   | (a currency conversion, account.fx: convert: neither) |

A conversion's leg is no rule kind's (``leg_kind`` is None), so no rule's planning modifies or
cancels it; ``converted_currency`` reads the currency it buys (daemon/planner/conversions.py).

A bracket's legs share the OCA group ``tctl:<rule>:<generation>``; a removed rule's protective
legs placed again without their parent carry the generation ``<generation>-kept``.

Everything that reads a leg or a rule's kind from an orderRef (the planner, the journal's
ledger, status, reports, records) asks this module.
"""

from __future__ import annotations

import re
from functools import partial
from typing import NamedTuple

from tradectl.schemas.models import RuleKind

ORDER_REF_PREFIX = "tctl"

ENTRY_LEG = "entry"
STOP_LEG = "stop"
TARGET_LEG = "target"
BRACKET_LEGS = (ENTRY_LEG, STOP_LEG, TARGET_LEG)
PROTECTIVE_LEGS = (STOP_LEG, TARGET_LEG)
KEPT_SUFFIX = "-kept"

# A scale's leg or an allocation's, in one match (the group that matched names the kind):
# ``L<level>``, or ``<instrument key>.<hex digest>``.
_RULE_LEG = re.compile(
    r"(?P<scales>L[1-9][0-9]*)$"
    r"|(?P<allocations>[A-Z][A-Z0-9 .@/|~]*|conid[|][0-9]+)[.][0-9a-f]{4,}$"
)
# An instrument key may hold the orderRef's field separator (``SHOP@SMART/TSE:CAD``,
# ``conid:N``); inside a leg it is written with this one instead, so a ref keeps four fields.
_KEY_SEPARATOR_IN_LEG = "|"


class ParsedRef(NamedTuple):
    """A tradectl orderRef taken apart."""

    rule: str
    generation: str
    leg: str

    @property
    def kind(self) -> RuleKind | None:
        return leg_kind(self.leg)


# ``ParsedRef(rule, generation, leg)`` from a tuple, without the named tuple's Python-level
# ``__new__`` (which does just this): every working order's orderRef is parsed each pass.
_parsed_ref = partial(tuple.__new__, ParsedRef)


def order_ref(rule: str, generation: str, leg: str) -> str:
    return f"{ORDER_REF_PREFIX}:{rule}:{generation}:{leg}"


def parse_order_ref(ref: str | None) -> ParsedRef | None:
    """The parts of a tradectl orderRef, or None for any other order (manual, other programs)."""
    if not ref:
        return None
    parts = ref.split(":")
    if len(parts) != 4:
        return None
    prefix, rule, generation, leg = parts
    if prefix != ORDER_REF_PREFIX or not rule or not generation or not leg:
        return None
    return _parsed_ref((rule, generation, leg))


def leg_of(ref: str) -> str:
    """The leg of an orderRef tradectl built itself (its own specs): the last field."""
    parsed = parse_order_ref(ref)
    assert parsed is not None, f"not a tradectl orderRef: {ref!r}"
    return parsed.leg


def leg_kind(leg: str) -> RuleKind | None:
    """Which kind of rule a leg belongs to, from its form alone; None for an unknown form."""
    if leg in BRACKET_LEGS:
        return "brackets"
    if leg.startswith(_CONVERSION_PREFIX) and converted_currency(leg) is not None:
        return None
    match = _RULE_LEG.match(leg)
    if match is None:
        return None
    kind: RuleKind = "scales" if match.lastgroup == "scales" else "allocations"
    return kind


def is_entry_leg(leg: str) -> bool:
    """A bracket's entry or a scale's level: its fills add to what the rule holds."""
    return leg == ENTRY_LEG or leg_kind(leg) == "scales"


def is_protective_leg(leg: str) -> bool:
    """A bracket's stop or target: its fills close what the entry opened."""
    return leg in PROTECTIVE_LEGS


def scale_leg(level: int) -> str:
    """The leg of a scale's ``level`` (1 for the first)."""
    return f"L{level}"


def allocation_leg(symbol: str, digest: str) -> str:
    """The leg of one allocation trade: the instrument key and a hash that tells trades apart.
    A bare ticker's leg is as it always was; a key's ``:`` is written ``|``."""
    return f"{symbol.replace(':', _KEY_SEPARATOR_IN_LEG)}.{digest}"


def oca_group_name(rule: str, generation: str) -> str:
    """The OCA group a bracket's legs share (IB fills at most one order of a group)."""
    return f"{ORDER_REF_PREFIX}:{rule}:{generation}"


def kept_generation(generation: str) -> str:
    """The generation in the orderRef of a removed rule's protective legs placed again without
    their parent (the children's own orderRefs stay with the cancelled ones)."""
    return generation if generation.endswith(KEPT_SUFFIX) else generation + KEPT_SUFFIX


# A conversion: fx.<currency bought>.<hash of the trading day>. Lower case, so that no
# allocation leg (which starts with an upper-case instrument key) can ever read as one.
_CONVERSION_PREFIX = "fx."


def conversion_leg(currency: str, day_hash: str) -> str:
    return f"{_CONVERSION_PREFIX}{currency}.{day_hash}"


def converted_currency(leg: str) -> str | None:
    """The currency a conversion leg buys; None for any other leg."""
    if not leg.startswith(_CONVERSION_PREFIX):
        return None
    parts = leg.split(".")
    return parts[1] if len(parts) == 3 and parts[1] else None
