# ruff: noqa: E501  (a data table: one rule-file edit and its expected errors per entry)
"""One mistake per rule set: the edits that make it, and the exact errors it must produce."""

from __future__ import annotations

from dataclasses import dataclass, field

from rules_fixture import BASE_FILES

BIG_FILE = "version: 1\n" + "# padding\n" * 110_000
ALIAS_BOMB = """\
version: 1
a: &a [x, x, x, x, x, x, x, x, x, x]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
"""


@dataclass(frozen=True)
class Case:
    name: str
    files: dict[str, str | bytes]
    expected: list[tuple[str, int, int, str, str]] = field(default_factory=list)
    """(file, line, column, field path, a part of the message) for every error, in order."""


def edit(name: str, old: str, new: str, *, count: int = 1) -> dict[str, str | bytes]:
    """The base rule set with ``old`` replaced by ``new`` in file ``name``."""
    text = BASE_FILES[name]
    assert text.count(old) == count, f"{old!r} occurs {text.count(old)} times in {name}"
    return {**BASE_FILES, name: text.replace(old, new)}


def add(name: str, content: str | bytes) -> dict[str, str | bytes]:
    return {**BASE_FILES, name: content}


CASES: list[Case] = [
    Case(
        "typo-key",
        edit("entries.yaml", "    stop_loss:", "    stop_los:"),
        [
            (
                "entries.yaml",
                4,
                5,
                "brackets.nvda-dip.stop_loss",
                "missing required key 'stop_loss'",
            ),
            ("entries.yaml", 8, 5, "brackets.nvda-dip.stop_los", "unknown key 'stop_los'"),
        ],
    ),
    Case(
        "typo-section",
        edit("core.yaml", "allocations:", "allocation:"),
        [("core.yaml", 2, 1, "allocation", "unknown key 'allocation'")],
    ),
    Case(
        "unknown-section",
        add("extra.yaml", "version: 1\nhalt: true\n"),
        [("extra.yaml", 2, 1, "halt", "unknown key 'halt'")],
    ),
    Case(
        "quantity-text",
        edit("entries.yaml", "quantity: 100", "quantity: ten"),
        [
            (
                "entries.yaml",
                6,
                15,
                "brackets.nvda-dip.quantity",
                "must be a whole number of shares or {risk_fraction: F}",
            )
        ],
    ),
    Case(
        "quantity-fraction",
        edit("entries.yaml", "quantity: 100", "quantity: 1.5"),
        [
            (
                "entries.yaml",
                6,
                15,
                "brackets.nvda-dip.quantity",
                "must be a whole number of shares or {risk_fraction: F}",
            )
        ],
    ),
    Case(
        "quantity-bool",
        edit("entries.yaml", "quantity: 100", "quantity: true"),
        [
            (
                "entries.yaml",
                6,
                15,
                "brackets.nvda-dip.quantity",
                "must be a whole number of shares or {risk_fraction: F}",
            )
        ],
    ),
    Case(
        "quantity-zero",
        edit("entries.yaml", "quantity: 100", "quantity: 0"),
        [("entries.yaml", 6, 15, "brackets.nvda-dip.quantity", "must be greater than 0")],
    ),
    Case(
        "quantity-extra-key",
        edit("entries.yaml", "quantity: 100", "quantity: {risk_fraction: 0.005, shares: 3}"),
        [("entries.yaml", 6, 38, "brackets.nvda-dip.quantity.shares", "unknown key 'shares'")],
    ),
    Case(
        "risk-fraction-over-limit",
        edit("entries.yaml", "quantity: 100", "quantity: {risk_fraction: 0.02}"),
        [("entries.yaml", 6, 16, "brackets.nvda-dip.quantity.risk_fraction", "must be <= 0.01")],
    ),
    Case(
        "weights-sum-over-1",
        edit(
            "core.yaml", "      MSFT: 0.2\n", "      MSFT: 0.25\n      GLD: 0.25\n      QQQ: 0.1\n"
        ),
        [("core.yaml", 6, 5, "allocations.core.targets", "target weights sum to 1.1")],
    ),
    Case(
        "weight-over-position-limit",
        edit("core.yaml", "MSFT: 0.2", "MSFT: 0.3"),
        [("core.yaml", 9, 7, "allocations.core.targets.MSFT", "must be <= 0.25")],
    ),
    Case(
        "weight-negative",
        edit("core.yaml", "MSFT: 0.2", "MSFT: -0.2"),
        [
            (
                "core.yaml",
                9,
                13,
                "allocations.core.targets.MSFT",
                "must be greater than or equal to 0",
            )
        ],
    ),
    Case(
        "stop-above-entry-buy",
        edit("entries.yaml", "stop_loss: {price: 160.0}", "stop_loss: {price: 175.0}"),
        [
            (
                "entries.yaml",
                8,
                17,
                "brackets.nvda-dip.stop_loss.price",
                "a BUY bracket's stop must be below its entry",
            )
        ],
    ),
    Case(
        "take-profit-below-entry-buy",
        edit("entries.yaml", "take_profit: {price: 195.0}", "take_profit: {price: 165.0}"),
        [
            (
                "entries.yaml",
                9,
                19,
                "brackets.nvda-dip.take_profit.price",
                "a BUY bracket's take_profit must be above its entry",
            )
        ],
    ),
    Case(
        "sell-bracket-levels-inverted",
        edit("entries.yaml", "side: BUY\n    quantity", "side: SELL\n    quantity"),
        [
            (
                "entries.yaml",
                8,
                17,
                "brackets.nvda-dip.stop_loss.price",
                "a SELL bracket's stop must be above its entry",
            ),
            (
                "entries.yaml",
                9,
                19,
                "brackets.nvda-dip.take_profit.price",
                "a SELL bracket's take_profit must be below its entry",
            ),
        ],
    ),
    Case(
        "stop-limit-below-stop",
        edit("entries.yaml", "entry: {limit: 170.0}", "entry: {stop: 172.0, limit: 171.0}"),
        [
            (
                "entries.yaml",
                7,
                26,
                "brackets.nvda-dip.entry.limit",
                "a BUY stop-limit entry needs limit >= stop",
            )
        ],
    ),
    Case(
        "entry-two-forms",
        edit("entries.yaml", "entry: {limit: 170.0}", "entry: {limit: 170.0, market: true}"),
        [("entries.yaml", 7, 5, "brackets.nvda-dip.entry", "market: true takes no limit or stop")],
    ),
    Case(
        "entry-market-yes",
        edit("entries.yaml", "entry: {limit: 170.0}", "entry: {market: yes}"),
        [("entries.yaml", 7, 21, "brackets.nvda-dip.entry.market", "must be true")],
    ),
    Case(
        "stop-two-forms",
        edit("entries.yaml", "stop_loss: {price: 160.0}", "stop_loss: {price: 160.0, percent: 5}"),
        [
            (
                "entries.yaml",
                8,
                5,
                "brackets.nvda-dip.stop_loss",
                "stop_loss needs exactly one of percent, price, trailing_percent",
            )
        ],
    ),
    Case(
        "side-lowercase",
        edit("entries.yaml", "side: BUY\n    quantity", "side: buy\n    quantity"),
        [("entries.yaml", 5, 11, "brackets.nvda-dip.side", "must be 'BUY' or 'SELL'")],
    ),
    Case(
        "symbol-not-allowed",
        edit("entries.yaml", "symbol: NVDA", "symbol: META"),
        [("entries.yaml", 4, 5, "brackets.nvda-dip.symbol", "META is not an allowed symbol")],
    ),
    Case(
        "symbol-lowercase",
        edit("entries.yaml", "symbol: NVDA", "symbol: nvda"),
        [
            (
                "entries.yaml",
                4,
                13,
                "brackets.nvda-dip.symbol",
                "'nvda': must be an upper-case ticker such as AAPL or 'BRK B'",
            )
        ],
    ),
    Case(
        "target-lowercase",
        edit("core.yaml", "MSFT: 0.2", "msft: 0.2"),
        [
            (
                "core.yaml",
                9,
                7,
                "allocations.core.targets.msft",
                "'msft': must be an upper-case ticker such as AAPL or 'BRK B'",
            )
        ],
    ),
    Case(
        "rule-name-uppercase",
        edit("entries.yaml", "nvda-dip:", "NVDA-Dip:"),
        [
            (
                "entries.yaml",
                3,
                3,
                "brackets.NVDA-Dip",
                "'NVDA-Dip': rule names are 1-40 characters of a-z, 0-9, '-' and '_', starting with a letter or digit",
            )
        ],
    ),
    Case(
        "bad-cron",
        edit("account.yaml", '"45 15 * * mon-fri"', '"61 15 * * mon-fri"'),
        [
            (
                "account.yaml",
                13,
                21,
                "schedule.rebalance.cron",
                "'61 15 * * mon-fri' is not a cron expression",
            )
        ],
    ),
    Case(
        "bad-time-zone",
        edit("account.yaml", "America/New_York", "America/New_Yrok"),
        [
            (
                "account.yaml",
                13,
                52,
                "schedule.rebalance.timezone",
                "unknown time zone 'America/New_Yrok': use an IANA name such as America/New_York",
            )
        ],
    ),
    Case(
        "bad-duration",
        edit("account.yaml", "reconcile_every: 30s", "reconcile_every: 30 sec"),
        [
            (
                "account.yaml",
                12,
                20,
                "schedule.reconcile_every",
                "'30 sec' is not a duration: write a whole number and a unit",
            )
        ],
    ),
    Case(
        "duration-number",
        edit("account.yaml", "reconcile_every: 30s", "reconcile_every: 30"),
        [
            (
                "account.yaml",
                12,
                20,
                "schedule.reconcile_every",
                "must be a duration string such as 30s, 5m or 1h",
            )
        ],
    ),
    Case(
        "sexagesimal-duration",
        edit("account.yaml", "reconcile_every: 30s", "reconcile_every: 1:30"),
        [
            (
                "account.yaml",
                12,
                20,
                "schedule.reconcile_every",
                "'1:30' is not a duration: write a whole number and a unit",
            )
        ],
    ),
    Case(
        "duration-too-long",
        edit("account.yaml", "reconcile_every: 30s", "reconcile_every: 2h"),
        [("account.yaml", 11, 1, "schedule", "reconcile_every must be between 1s and 1h")],
    ),
    Case(
        "duplicate-name-across-files",
        add(
            "more.yaml",
            "version: 1\nbrackets:\n  nvda-dip:\n    symbol: NVDA\n    side: BUY\n    quantity: 10\n    entry: {limit: 150.0}\n    stop_loss: {percent: 5}\n    take_profit: {percent: 10}\n",
        ),
        [
            (
                "more.yaml",
                3,
                3,
                "brackets.nvda-dip",
                "duplicate rule name 'nvda-dip': already used by brackets.nvda-dip",
            )
        ],
    ),
    Case(
        "duplicate-name-across-kinds",
        edit("entries.yaml", "  amzn-ladder:", "  nvda-dip:"),
        [
            (
                "entries.yaml",
                11,
                3,
                "scales.nvda-dip",
                "duplicate rule name 'nvda-dip': already used by brackets.nvda-dip",
            )
        ],
    ),
    Case(
        "duplicate-singleton-across-files",
        add(
            "risk2.yaml",
            "version: 1\nrisk:\n  max_order_value: 1000\n  max_position_fraction: 0.1\n  max_risk_per_trade_fraction: 0.01\n  max_daily_loss_fraction: 0.02\n",
        ),
        [
            (
                "risk2.yaml",
                2,
                1,
                "risk",
                "duplicate section: risk is already defined",
            )
        ],
    ),
    Case(
        "duplicate-key-in-mapping",
        edit(
            "entries.yaml",
            "    side: BUY\n    quantity: 100",
            "    side: BUY\n    side: SELL\n    quantity: 100",
        ),
        [("entries.yaml", 6, 5, "brackets.nvda-dip.side", "duplicate key 'side'")],
    ),
    Case(
        "yaml-syntax-error",
        edit("entries.yaml", "entry: {limit: 170.0}", "entry: {limit: 170.0"),
        [("entries.yaml", 8, 14, "", "YAML syntax error: expected ',' or '}', but got ':'")],
    ),
    Case(
        "tab-indentation",
        edit("entries.yaml", "    side: BUY\n    quantity", "\tside: BUY\n    quantity"),
        [("entries.yaml", 5, 1, "", "tab character: YAML indentation must use spaces, not tabs")],
    ),
    Case(
        "empty-file",
        add("empty.yaml", ""),
        [("empty.yaml", 1, 1, "", "file is empty: a rule file holds at least 'version: 1'")],
    ),
    Case(
        "comment-only-file",
        add("notes.yaml", "# nothing here yet\n"),
        [("notes.yaml", 1, 1, "", "file is empty: a rule file holds at least 'version: 1'")],
    ),
    Case(
        "list-at-top-level",
        add("list.yaml", "- version: 1\n"),
        [("list.yaml", 1, 1, "", "a rule file must be a mapping of sections")],
    ),
    Case(
        "scalar-at-top-level",
        add("scalar.yaml", "version\n"),
        [("scalar.yaml", 1, 1, "", "a rule file must be a mapping of sections")],
    ),
    Case(
        "two-documents",
        add("two.yaml", "version: 1\n---\nversion: 1\n"),
        [("two.yaml", 2, 1, "", "more than one YAML document")],
    ),
    Case(
        "non-utf8",
        add("latin1.yaml", "version: 1\n# caf\xe9\n".encode("latin-1")),
        [("latin1.yaml", 2, 6, "", "not UTF-8: byte 0xe9 cannot be decoded")],
    ),
    Case(
        "file-over-1mib",
        add("big.yaml", BIG_FILE),
        [("big.yaml", 1, 1, "", "file is larger than 1 MiB")],
    ),
    Case(
        "alias-bomb",
        add("bomb.yaml", ALIAS_BOMB),
        [
            (
                "bomb.yaml",
                6,
                4,
                "",
                "the document has, or expands through aliases to, more than 100000 nodes",
            )
        ],
    ),
    Case(
        "recursive-alias",
        add("loop.yaml", "version: 1\nx: &x [*x]\n"),
        [("loop.yaml", 2, 4, "", "nesting is too deep")],
    ),
    Case(
        "unknown-tag",
        add("tag.yaml", "version: 1\nrecords: !!python/object:os.system {dir: x}\n"),
        [
            (
                "tag.yaml",
                2,
                10,
                "records",
                "unsupported YAML tag 'tag:yaml.org,2002:python/object:os.system'",
            )
        ],
    ),
    Case(
        "complex-key",
        add("key.yaml", "version: 1\n? [a, b]\n: 1\n"),
        [("key.yaml", 2, 3, "", "mapping keys must be plain names, not lists or maps")],
    ),
    Case(
        "missing-version",
        edit("core.yaml", "version: 1\n", ""),
        [("core.yaml", 1, 1, "version", "missing: every rule file starts with 'version: 1'")],
    ),
    Case(
        "version-2",
        edit("core.yaml", "version: 1", "version: 2"),
        [
            (
                "core.yaml",
                1,
                10,
                "version",
                "version 2 is not supported: this tradectl reads rule language version 1",
            )
        ],
    ),
    Case(
        "version-true",
        edit("core.yaml", "version: 1", "version: true"),
        [("core.yaml", 1, 10, "version", "must be the number 1")],
    ),
    Case(
        "live-account-without-live",
        edit("account.yaml", "id: DU0000001", "id: U1234567"),
        [("account.yaml", 3, 3, "account.id", "live account: U1234567 is not a paper account")],
    ),
    Case(
        "too-many-working-orders",
        {
            **edit("entries.yaml", "    levels: 5\n", "    levels: 20\n"),
            "short.yaml": "version: 1\nbrackets:\n  amzn-fade:\n    symbol: AMZN\n    side: SELL\n    quantity: 50\n    entry: {limit: 240.0}\n    stop_loss: {percent: 3}\n    take_profit: {percent: 6}\n",
        },
        [
            (
                "entries.yaml",
                12,
                5,
                "scales.amzn-ladder.symbol",
                "the rules need 22 working BUY orders on AMZN",
            )
        ],
    ),
    Case(
        "scale-price-negative",
        edit("entries.yaml", "step: 2.5", "step: 60.0"),
        [
            (
                "entries.yaml",
                17,
                5,
                "scales.amzn-ladder.step",
                "the last of 5 levels would be priced 220 - 60 x 4 = -20",
            )
        ],
    ),
    Case(
        "scale-level-too-valuable",
        edit("entries.yaml", "total_quantity: 200", "total_quantity: 2000"),
        [
            (
                "entries.yaml",
                14,
                5,
                "scales.amzn-ladder.total_quantity",
                "level 1 is worth 400 x 220.00 = 88,000.00, more than the 50,000.00 allowed per order",
            )
        ],
    ),
    Case(
        "bracket-order-too-valuable",
        edit("entries.yaml", "quantity: 100", "quantity: 300"),
        [
            (
                "entries.yaml",
                6,
                5,
                "brackets.nvda-dip.quantity",
                "the take_profit order is worth 300 x 195.00 = 58,500.00, more than the 50,000.00 allowed per order",
            )
        ],
    ),
    Case(
        "symbol-in-allocation-and-bracket",
        edit("entries.yaml", "symbol: NVDA", "symbol: SPY"),
        [
            (
                "entries.yaml",
                4,
                5,
                "brackets.nvda-dip.symbol",
                "SPY is also a target of allocation 'core': the allocation would treat the shares this rule trades as drift and trade them away",
            )
        ],
    ),
    Case(
        "symbol-in-two-allocations",
        add(
            "satellite.yaml",
            "version: 1\nallocations:\n  satellite:\n    capital: {fraction_of_nav: 0.2}\n    targets: {GLD: 0.5, SPY: 0.25}\n",
        ),
        [
            ("satellite.yaml", 5, 15, "allocations.satellite.targets.GLD", "must be <= 0.25"),
            (
                "satellite.yaml",
                5,
                25,
                "allocations.satellite.targets.SPY",
                "SPY is already a target of allocation 'core'",
            ),
        ],
    ),
    Case(
        "capital-over-nav",
        add(
            "satellite.yaml",
            "version: 1\nallocations:\n  satellite:\n    capital: {fraction_of_nav: 0.5}\n    targets: {GLD: 0.25}\n",
        ),
        [
            (
                "satellite.yaml",
                4,
                15,
                "allocations.satellite.capital.fraction_of_nav",
                "capital.fraction_of_nav of all allocations sums to 1.1",
            )
        ],
    ),
    Case(
        "missing-account",
        edit("account.yaml", "account:\n  id: DU0000001\n", ""),
        [
            (
                "account.yaml",
                1,
                1,
                "account",
                "missing: no file of this rule set has an account section",
            )
        ],
    ),
    Case(
        "missing-risk",
        edit(
            "account.yaml",
            "risk:\n  max_order_value: 50000\n  max_position_fraction: 0.25\n  max_risk_per_trade_fraction: 0.01\n  max_daily_loss_fraction: 0.03\n  allowed_symbols: [AAPL, MSFT, NVDA, AMZN, SPY, TLT, GLD, QQQ]\n",
            "",
        ),
        [("account.yaml", 1, 1, "risk", "missing: no file of this rule set has a risk section")],
    ),
    Case(
        "account-not-a-mapping",
        edit("account.yaml", "account:\n  id: DU0000001\n", "account: DU0000001\n"),
        [("account.yaml", 2, 10, "account", "must be a mapping of keys")],
    ),
    Case(
        "account-empty",
        edit("account.yaml", "account:\n  id: DU0000001\n", "account:\n"),
        [
            (
                "account.yaml",
                2,
                1,
                "account",
                "is empty: write the section's keys or remove the section",
            )
        ],
    ),
    Case(
        "negative-order-value",
        edit("account.yaml", "max_order_value: 50000", "max_order_value: -5"),
        [("account.yaml", 6, 20, "risk.max_order_value", "must be greater than 0")],
    ),
    Case(
        "underscore-number",
        edit("account.yaml", "max_order_value: 50000", "max_order_value: 50_000"),
        [("account.yaml", 6, 20, "risk.max_order_value", "must be a valid number")],
    ),
    Case(
        "allowed-symbols-empty",
        edit(
            "account.yaml",
            "allowed_symbols: [AAPL, MSFT, NVDA, AMZN, SPY, TLT, GLD, QQQ]",
            "allowed_symbols: []",
        ),
        [("account.yaml", 10, 3, "risk.allowed_symbols", "must not be empty")],
    ),
    Case(
        "port-out-of-range",
        edit("account.yaml", "port: 4002", "port: 70000"),
        [("account.yaml", 4, 34, "gateway.port", "must be less than or equal to 65535")],
    ),
    Case(
        "live-yes",
        edit("account.yaml", "id: DU0000001", "id: DU0000001\n  live: yes"),
        [("account.yaml", 4, 9, "account.live", "must be a valid boolean")],
    ),
    Case(
        "merge-key",
        add("merge.yaml", "version: 1\nbrackets:\n  x:\n    <<: {symbol: NVDA}\n"),
        [("merge.yaml", 4, 5, "brackets.x.<<", "YAML merge keys")],
    ),
    Case(
        "sell-stop-limit-above-stop",
        edit(
            "entries.yaml",
            "    side: BUY\n    quantity: 100\n    entry: {limit: 170.0}\n    stop_loss: {price: 160.0}\n    take_profit: {price: 195.0}",
            "    side: SELL\n    quantity: 100\n    entry: {stop: 168.0, limit: 169.0}\n    stop_loss: {price: 175.0}\n    take_profit: {price: 150.0}",
        ),
        [
            (
                "entries.yaml",
                7,
                26,
                "brackets.nvda-dip.entry.limit",
                "a SELL stop-limit entry needs limit <= stop",
            )
        ],
    ),
    Case(
        "stop-without-limit",
        edit("entries.yaml", "entry: {limit: 170.0}", "entry: {stop: 172.0}"),
        [
            (
                "entries.yaml",
                7,
                5,
                "brackets.nvda-dip.entry",
                "entry needs one of {limit: P}, {market: true} or {stop: S, limit: P}",
            )
        ],
    ),
    Case(
        "scale-too-many-levels",
        edit("entries.yaml", "    levels: 5\n", "    levels: 21\n"),
        [("entries.yaml", 15, 13, "scales.amzn-ladder.levels", "must be less than or equal to 20")],
    ),
    Case(
        "scale-fewer-shares-than-levels",
        edit("entries.yaml", "total_quantity: 200", "total_quantity: 3"),
        [
            (
                "entries.yaml",
                11,
                3,
                "scales.amzn-ladder",
                "total_quantity 3 cannot be split over 5 levels",
            )
        ],
    ),
    Case(
        "targets-empty",
        edit(
            "core.yaml",
            "    targets:\n      SPY: 0.25\n      TLT: 0.25\n      MSFT: 0.2\n",
            "    targets: {}\n",
        ),
        [("core.yaml", 6, 5, "allocations.core.targets", "must not be empty")],
    ),
    Case(
        "capital-two-forms",
        edit(
            "core.yaml",
            "capital: {fraction_of_nav: 0.6}",
            "capital: {fraction_of_nav: 0.6, amount: 1000}",
        ),
        [
            (
                "core.yaml",
                4,
                5,
                "allocations.core.capital",
                "capital needs exactly one of fraction_of_nav, amount",
            )
        ],
    ),
    Case(
        "market-order-with-offset",
        edit(
            "core.yaml",
            "order: {type: limit, offset_bps: 10}",
            "order: {type: market, offset_bps: 10}",
        ),
        [("core.yaml", 5, 5, "allocations.core.order", "offset_bps applies only to type: limit")],
    ),
    Case(
        "gcs-not-a-gs-url",
        edit(
            "account.yaml",
            "records: {dir: var/records}",
            "records: {dir: var/records, gcs: s3://bucket}",
        ),
        [
            (
                "account.yaml",
                14,
                34,
                "records.gcs",
                # never echoed: a URL can carry credentials (docs/security.md)
                "must be a Cloud Storage location such as gs://bucket/prefix",
            )
        ],
    ),
    Case(
        "account-id-malformed",
        edit("account.yaml", "id: DU0000001", "id: paper-1"),
        [
            (
                "account.yaml",
                3,
                7,
                "account.id",
                "'paper-1': must be an IB account id such as DU1234567",
            )
        ],
    ),
    Case(
        "percent-out-of-range",
        edit("entries.yaml", "stop_loss: {price: 160.0}", "stop_loss: {percent: 150}"),
        [("entries.yaml", 8, 26, "brackets.nvda-dip.stop_loss.percent", "must be less than 100")],
    ),
    Case(
        "time-zone-is-a-region",
        edit("account.yaml", "America/New_York", "America"),
        [
            (
                "account.yaml",
                13,
                52,
                "schedule.rebalance.timezone",
                "unknown time zone 'America': use an IANA name such as America/New_York",
            )
        ],
    ),
    Case(
        "share-class-with-a-dot",
        edit("entries.yaml", "symbol: NVDA", "symbol: BRK.B"),
        [
            (
                "entries.yaml",
                4,
                13,
                "brackets.nvda-dip.symbol",
                "'BRK.B': IB writes a share class after a space, not a dot: write 'BRK B'",
            )
        ],
    ),
    Case(
        "instrument-con-id-with-a-symbol",
        edit("entries.yaml", "symbol: NVDA", "symbol: {con_id: 4815747, symbol: NVDA}"),
        [
            (
                "entries.yaml",
                4,
                5,
                "brackets.nvda-dip.symbol",
                "{con_id} names the contract alone; leave out symbol",
            )
        ],
    ),
    Case(
        "target-list-weight-too-high",
        edit(
            "core.yaml",
            "      SPY: 0.25\n      TLT: 0.25\n      MSFT: 0.2\n",
            "      - {symbol: SPY, weight: 0.25}\n      - {symbol: TLT, weight: 0.3}\n",
        ),
        [
            (
                "core.yaml",
                8,
                23,
                "allocations.core.targets[1].weight",
                "must be <= 0.25 (risk.max_position_fraction, ",
            )
        ],
    ),
    Case(
        "target-list-same-instrument-twice",
        edit(
            "core.yaml",
            "      SPY: 0.25\n      TLT: 0.25\n      MSFT: 0.2\n",
            "      - {symbol: SPY, weight: 0.1}\n      - {symbol: SPY, exchange: SMART, weight: 0.1}\n",
        ),
        [
            (
                "core.yaml",
                3,
                3,
                "allocations.core",
                "targets[1] names SPY again (also targets[0])",
            )
        ],
    ),
]
