"""Hostile rule sets: deterministic, generated, every one of them invalid by construction.

Each case starts from a valid rule set (the examples, the default rules, or the daemon test's
own rules) and breaks it in one way a careless edit, a failing disk or an attacker might:
mutated lines, random bytes, huge files, deep nesting, alias bombs, cross-file conflicts and
valid-looking rules that break the rule set's own risk limits. The loader must reject every one
with at least one error located in the file that was broken, and never raise.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_DIRS = (
    REPO / "rules",
    REPO / "examples" / "allocation-only",
    REPO / "examples" / "brackets",
    REPO / "examples" / "multi-file",
    REPO / "examples" / "risk-heavy",
    REPO / "examples" / "scales",
)
NEW_FILE = "zz-hostile.yaml"
ONE_MIB = 1024 * 1024


@dataclass(frozen=True)
class HostileCase:
    """One broken rule set and where its breakage is."""

    name: str
    category: str
    files: dict[str, bytes]
    bad_file: str
    """The file (name in the rule directory) that must carry at least one error."""
    bad_line: int | None = None
    """The line that must carry an error, when the breakage is on one known line."""


def read_rule_dir(directory: Path) -> dict[str, str]:
    return {
        path.name: path.read_text(encoding="utf-8")
        for path in sorted(directory.iterdir())
        if path.suffix in (".yaml", ".yml")
    }


def example_bases() -> list[dict[str, str]]:
    return [read_rule_dir(directory) for directory in EXAMPLE_DIRS]


# --- line helpers -------------------------------------------------------------------------------

KEY_LINE = re.compile(r"^( *)([A-Za-z_][A-Za-z0-9_.-]*):(?: +(.*))?$")


def _key_lines(text: str) -> list[tuple[int, str, str, str]]:
    """(index, indent, key, value) of every block-mapping key line."""
    found = []
    for index, line in enumerate(text.splitlines()):
        match = KEY_LINE.match(line)
        if match:
            found.append((index, match.group(1), match.group(2), match.group(3) or ""))
    return found


def _replace_line(text: str, index: int, new_lines: list[str]) -> str:
    lines = text.splitlines()
    return "\n".join([*lines[:index], *new_lines, *lines[index + 1 :]]) + "\n"


def _merged(files: Mapping[str, str]) -> dict[str, object]:
    merged: dict[str, object] = {}
    for text in files.values():
        data = yaml.safe_load(text) or {}
        for key, value in data.items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **value}  # type: ignore[dict-item]
            else:
                merged[key] = value
    return merged


def _encode(files: Mapping[str, str | bytes]) -> dict[str, bytes]:
    return {
        name: content if isinstance(content, bytes) else content.encode("utf-8")
        for name, content in files.items()
    }


Base = dict[str, str]
Mutation = Callable[[random.Random, Base], tuple[dict[str, str | bytes], str, int | None] | None]


# --- mutations of the text ----------------------------------------------------------------------


def unknown_key(rng: random.Random, base: Base) -> tuple[dict[str, str | bytes], str, int | None]:
    name = rng.choice(sorted(base))
    lines = _key_lines(base[name])
    index, indent, _, _ = rng.choice(lines)
    key = f"zz_unknown_{rng.randrange(10**6)}"
    original = base[name].splitlines()[index]
    text = _replace_line(base[name], index, [f"{indent}{key}: 1", original])
    return {**base, name: text}, name, index + 1


REQUIRED_KEYS = ("symbol", "side", "entry", "stop_loss", "take_profit", "total_quantity")
REQUIRED_KEYS += ("levels", "start_price", "step", "capital", "max_order_value")
REQUIRED_KEYS += ("max_position_fraction", "id")


def delete_required(
    rng: random.Random, base: Base
) -> tuple[dict[str, str | bytes], str, int | None] | None:
    candidates = [
        (name, index, key)
        for name in sorted(base)
        for index, _, key, value in _key_lines(base[name])
        if (key in REQUIRED_KEYS and value and not value.startswith("#")) or key == "version"
    ]
    name, index, _ = rng.choice(candidates)
    return {**base, name: _replace_line(base[name], index, [])}, name, None


NUMERIC_KEYS = (
    "max_order_value|max_position_fraction|max_risk_per_trade_fraction|max_daily_loss_fraction|"
    "max_orders_per_minute|levels|total_quantity|start_price|step|quantity|min_trade_value|"
    "offset_bps|port|client_id|fraction_of_nav|amount|limit|price|percent|trailing_percent|"
    "absolute|risk_fraction|[A-Z][A-Z0-9]{0,9}"
)
NUMERIC_VALUE = re.compile(rf"(?<![A-Za-z_])({NUMERIC_KEYS}): *(-?[0-9][0-9_.]*)")
HOSTILE_NUMBERS = (
    "-1",
    "-0.5",
    ".nan",
    ".inf",
    "-.inf",
    "1e400",
    "lots",
    "[]",
    "{}",
    "true",
    "1:30",
    "9" * 40,
    "''",
    "!!binary aGVsbG8=",
)


def bad_number(
    rng: random.Random, base: Base
) -> tuple[dict[str, str | bytes], str, int | None] | None:
    candidates = [
        (name, index, match)
        for name in sorted(base)
        for index, line in enumerate(base[name].splitlines())
        if not line.lstrip().startswith("#")
        for match in NUMERIC_VALUE.finditer(line.split(" #")[0])
        if match.group(1) not in ("version",)
    ]
    name, index, match = rng.choice(candidates)
    value = rng.choice(HOSTILE_NUMBERS)
    line = base[name].splitlines()[index]
    if value in ("[]", "{}", "''") or value.startswith("!!") or "{" in line[: match.start()]:
        # Flow context: quote nothing, but keep flow syntax valid by using a plain scalar.
        value = rng.choice(("-1", ".nan", ".inf", "lots", "1e400", "9" * 40))
    new_line = line[: match.start(2)] + value + line[match.end(2) :]
    return {**base, name: _replace_line(base[name], index, [new_line])}, name, index + 1


ENUM_EDITS = (
    (re.compile(r"(side: *)(BUY|SELL)"), ("HOLD", "SHORT", "'BUY '", "1")),
    (re.compile(r"(type: *)(limit|market)"), ("iceberg", "LMT", "stop")),
    (re.compile(r"(tif: *)(DAY|GTC)"), ("FOREVER", "IOC", "gtc")),
    (re.compile(r"(live: *)(false|true)"), ("maybe", "'yes'", "2")),
    (re.compile(r"(id: *)([A-Z]{1,3}[0-9]{4,10})"), ("du-1", "'DU 1'", "12345")),
    (re.compile(r"(symbol: *)([A-Z]+)"), ("nvda", "'NV DA'", "AAPL.XYZ", "TOOLONGTICKER1")),
    (re.compile(r"(reconcile_every: *)(\w+)"), ("soon", "-5s", "30 fortnights")),
    (re.compile(r"(timezone: *)([\w/]+)"), ("Mars/Olympus", "America", "../../etc/passwd")),
    (re.compile(r'(cron: *)("[^"]*")'), ('"61 25 * * *"', '"* * *"', '"@sometimes"')),
    (re.compile(r"(gcs: *)(\S+)"), ('"s3://bucket"', '"gs://"')),
)


def bad_enum(
    rng: random.Random, base: Base
) -> tuple[dict[str, str | bytes], str, int | None] | None:
    candidates = [
        (name, index, pattern, values, match)
        for name in sorted(base)
        for index, line in enumerate(base[name].splitlines())
        if not line.lstrip().startswith("#")
        for pattern, values in ENUM_EDITS
        for match in pattern.finditer(line.split(" #")[0])
    ]
    if not candidates:
        return None
    name, index, _, values, match = rng.choice(candidates)
    line = base[name].splitlines()[index]
    new_line = line[: match.start(2)] + rng.choice(values) + line[match.end(2) :]
    return {**base, name: _replace_line(base[name], index, [new_line])}, name, index + 1


def duplicate_key(
    rng: random.Random, base: Base
) -> tuple[dict[str, str | bytes], str, int | None] | None:
    candidates = [
        (name, index)
        for name in sorted(base)
        for index, _, key, value in _key_lines(base[name])
        if value and not value.startswith("#") and key != "version"
    ]
    name, index = rng.choice(candidates)
    line = base[name].splitlines()[index]
    text = _replace_line(base[name], index, [line, line])
    return {**base, name: text}, name, index + 2


def syntax_break(
    rng: random.Random, base: Base
) -> tuple[dict[str, str | bytes], str, int | None] | None:
    name = rng.choice(sorted(base))
    lines = _key_lines(base[name])
    index, indent, key, _ = rng.choice(lines)
    kind = rng.choice(("flow", "tab", "colon", "quote", "dash"))
    if kind == "flow":
        new = [f"{indent}{key}: {{unclosed: [1, 2"]
    elif kind == "tab":
        new = [f"\t{indent}{key}: 1"]
    elif kind == "colon":
        new = [f"{indent}{key}: a: b: c"]
    elif kind == "quote":
        new = [f'{indent}{key}: "never closed']
    else:
        new = [f"{indent}- {key}", f"{indent}{key}: 1"]
    return {**base, name: _replace_line(base[name], index, new)}, name, None


def random_bytes(
    rng: random.Random, base: Base
) -> tuple[dict[str, str | bytes], str, int | None] | None:
    blob = rng.randbytes(rng.randrange(1, 4096))
    if not blob.strip():
        blob = b"\x00" + blob
    name = rng.choice(sorted(base)) if rng.random() < 0.5 else NEW_FILE
    return {**base, name: blob}, name, None


POISON = (b"\x00", b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"\x1b[2J", b"\xef\xbb\xbf\x00")


def poisoned_bytes(
    rng: random.Random, base: Base
) -> tuple[dict[str, str | bytes], str, int | None] | None:
    name = rng.choice(sorted(base))
    lines = _key_lines(base[name])
    index, indent, key, value = rng.choice(lines)
    raw = base[name].encode("utf-8").split(b"\n")
    poison = rng.choice(POISON)
    raw[index] = f"{indent}{key}: ".encode() + poison + value.encode("utf-8")
    return {**base, name: b"\n".join(raw)}, name, None


# --- structural attacks -------------------------------------------------------------------------


def huge_file(
    rng: random.Random, base: Base
) -> tuple[dict[str, str | bytes], str, int | None] | None:
    name = rng.choice([*sorted(base), NEW_FILE])
    head = base.get(name, "version: 1\n")
    size = rng.randrange(ONE_MIB + 1, 3 * ONE_MIB)
    kind = rng.choice(("comments", "one-line", "many-rules"))
    if kind == "comments":
        body = head + "# padding\n" * (size // 10)
    elif kind == "one-line":
        body = head + "# " + "x" * size + "\n"
    else:
        rule = "  r{n}: {{symbol: AAPL, side: BUY, total_quantity: 1, levels: 1, "
        rule += "start_price: 1.0, step: 0.1}}\n"
        count = size // len(rule) + 1
        body = "version: 1\nscales:\n" + "".join(rule.format(n=n) for n in range(count))
        name = NEW_FILE
    return {**base, name: body}, name, None


def deep_nesting(
    rng: random.Random, base: Base
) -> tuple[dict[str, str | bytes], str, int | None] | None:
    depth = rng.choice((65, 100, 1_000, 10_000, 100_000))
    kind = rng.choice(("flow-list", "flow-map", "block"))
    if kind == "flow-list":
        value = "[" * depth + "]" * depth
    elif kind == "flow-map":
        value = "{a: " * depth + "1" + "}" * depth
    else:
        depth = min(depth, 2_000)
        value = "\n" + "".join("  " * (level + 1) + "a:\n" for level in range(depth))
        value += "  " * (depth + 1) + "1"
    section = rng.choice(("allocations", "brackets", "zz_nested", "risk"))
    body = f"version: 1\n{section}: {value}\n"
    return {**base, NEW_FILE: body}, NEW_FILE, None


def alias_bomb(
    rng: random.Random, base: Base
) -> tuple[dict[str, str | bytes], str, int | None] | None:
    width = rng.randrange(5, 13)
    depth = rng.randrange(5, 10)
    kind = rng.choice(("list", "merge", "self"))
    lines = ["version: 1"]
    if kind == "self":
        lines.append("allocations: &a {core: *a}")
    else:
        lines.append(f"l0: &l0 [{', '.join(['x'] * width)}]")
        for level in range(1, depth):
            if kind == "list":
                items = ", ".join([f"*l{level - 1}"] * width)
                lines.append(f"l{level}: &l{level} [{items}]")
            else:
                lines.append(f"l{level}: &l{level}")
                for copy in range(width):
                    lines.append(f"  k{copy}: *l{level - 1}")
        lines.append(f"allocations: {{core: {{targets: *l{depth - 1}}}}}")
    return {**base, NEW_FILE: "\n".join(lines) + "\n"}, NEW_FILE, None


# --- valid-looking rules that break the rule set's own limits -----------------------------------


def _risk(base: Base) -> tuple[float, list[str]]:
    risk = _merged(base).get("risk")
    assert isinstance(risk, dict)
    allowed = risk.get("allowed_symbols") or ["AAPL", "MSFT", "GOOGL", "SPY", "QQQ", "TLT"]
    return float(risk["max_position_fraction"]), [str(symbol) for symbol in allowed]


def risk_violation(
    rng: random.Random, base: Base
) -> tuple[dict[str, str | bytes], str, int | None] | None:
    max_fraction, allowed = _risk(base)
    symbol = rng.choice(allowed)
    rule = f"zz-hostile-{rng.randrange(10**6)}"
    kind = rng.choice(
        (
            "above-position-limit",
            "not-allowed",
            "sum-above-one",
            "bracket-stop-wrong-side",
            "bracket-target-wrong-side",
            "too-many-orders",
            "scale-below-zero",
            "live-account",
        )
    )
    if kind == "not-allowed" and not _merged(base).get("risk", {}).get("allowed_symbols"):  # type: ignore[union-attr]
        kind = "above-position-limit"
    if kind == "sum-above-one" and len(allowed) * max_fraction <= 1:
        kind = "above-position-limit"
    if kind == "live-account":
        name = next(name for name, text in base.items() if re.search(r"^account:", text, re.M))
        text = re.sub(r"(\n  id: *)DU", r"\1U", base[name], count=1)
        text = re.sub(r"\n  live: *true", "\n  live: false", text)
        if text == base[name]:
            kind = "above-position-limit"
        else:
            return {**base, name: text}, name, None
    if kind == "above-position-limit":
        weight = round(min(1.0, max_fraction + rng.choice((0.01, 0.05, 0.2))), 4)
        if weight <= max_fraction:
            kind = "not-allowed"
            symbol = "ZZZZ"
        else:
            body = f"allocations:\n  {rule}:\n    capital: {{fraction_of_nav: 0.1}}\n"
            body += f"    targets:\n      {symbol}: {weight}\n"
    if kind == "not-allowed":
        outsider = next(s for s in ("ZZZZ", "XOM", "TSLA", "IBM", "KO") if s not in allowed)
        body = f"allocations:\n  {rule}:\n    capital: {{fraction_of_nav: 0.1}}\n"
        body += f"    targets:\n      {outsider}: 0.01\n"
    elif kind == "sum-above-one":
        count = int(1 / max_fraction) + 1
        targets = "".join(f"      {s}: {max_fraction}\n" for s in allowed[:count])
        body = f"allocations:\n  {rule}:\n    capital: {{fraction_of_nav: 0.1}}\n"
        body += f"    targets:\n{targets}"
    elif kind in ("bracket-stop-wrong-side", "bracket-target-wrong-side"):
        side = rng.choice(("BUY", "SELL"))
        sign = 1 if side == "BUY" else -1
        if kind == "bracket-stop-wrong-side":
            stop, target = 100 + sign * 5, 100 + sign * 10
        else:
            stop, target = 100 - sign * 5, 100 - sign * 10
        body = (
            f"brackets:\n  {rule}:\n    symbol: {symbol}\n    side: {side}\n    quantity: 1\n"
            f"    entry: {{limit: 100.0}}\n    stop_loss: {{price: {stop}.0}}\n"
            f"    take_profit: {{price: {target}.0}}\n"
        )
    elif kind == "too-many-orders":
        body = "scales:\n" + "".join(
            f"  {rule}-{copy}:\n    symbol: {symbol}\n    side: BUY\n    total_quantity: 15\n"
            f"    levels: 15\n    start_price: 10.0\n    step: 0.01\n"
            for copy in range(2)
        )
    elif kind == "scale-below-zero":
        body = (
            f"scales:\n  {rule}:\n    symbol: {symbol}\n    side: BUY\n    total_quantity: 10\n"
            f"    levels: 10\n    start_price: 1.0\n    step: 0.5\n"
        )
    return {**base, NEW_FILE: "version: 1\n" + body}, NEW_FILE, None


def cross_file(
    rng: random.Random, base: Base
) -> tuple[dict[str, str | bytes], str, int | None] | None:
    merged = _merged(base)
    kind = rng.choice(("duplicate-rule", "duplicate-section", "missing-risk"))
    rule_names = [
        name
        for kind_name in ("allocations", "brackets", "scales")
        for name in (merged.get(kind_name) or {})  # type: ignore[union-attr]
    ]
    if kind == "duplicate-rule" and rule_names:
        name = rng.choice(rule_names)
        body = (
            f"version: 1\nscales:\n  {name}:\n    symbol: AAPL\n    side: BUY\n"
            "    total_quantity: 1\n    levels: 1\n    start_price: 1.0\n    step: 0.1\n"
        )
        return {**base, NEW_FILE: body}, NEW_FILE, 3
    if kind in ("duplicate-section", "duplicate-rule"):
        section = rng.choice(("risk", "account"))
        body = yaml.safe_dump({"version": 1, section: merged[section]}, sort_keys=False)
        return {**base, NEW_FILE: body}, NEW_FILE, 2
    owner = next(name for name, text in base.items() if re.search(r"^risk:", text, re.M))
    remaining = {name: text for name, text in base.items() if name != owner}
    if not remaining:
        return None
    return dict(remaining), sorted(remaining)[0], None


MUTATIONS: dict[str, Mutation] = {
    "unknown-key": unknown_key,
    "missing-key": delete_required,
    "bad-number": bad_number,
    "bad-enum": bad_enum,
    "duplicate-key": duplicate_key,
    "syntax": syntax_break,
    "random-bytes": random_bytes,
    "poisoned-bytes": poisoned_bytes,
    "huge-file": huge_file,
    "deep-nesting": deep_nesting,
    "alias-bomb": alias_bomb,
    "risk-violation": risk_violation,
    "cross-file": cross_file,
}
# Risk violations and mutations are what a trader's edits produce; weight them up.
WEIGHTS = {"risk-violation": 3, "bad-number": 2, "unknown-key": 2, "bad-enum": 2}
SCHEDULE = [name for name in MUTATIONS for _ in range(WEIGHTS.get(name, 1))]


def hostile_cases(
    count: int, *, seed: int = 9, bases: list[Base] | None = None
) -> Iterator[HostileCase]:
    """``count`` hostile rule sets, the same ones for the same seed and bases."""
    rng = random.Random(seed)
    bases = bases if bases is not None else example_bases()
    produced = 0
    attempt = 0
    while produced < count:
        category = SCHEDULE[attempt % len(SCHEDULE)]
        attempt += 1
        base_index = rng.randrange(len(bases))
        outcome = MUTATIONS[category](rng, bases[base_index])
        if outcome is None:
            continue
        files, bad_file, bad_line = outcome
        yield HostileCase(
            f"{produced:04d}-{category}-base{base_index}",
            category,
            _encode(files),
            bad_file,
            bad_line,
        )
        produced += 1
