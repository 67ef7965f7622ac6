"""A small valid rule set that the broken-rule-set tests mutate one mistake at a time."""

from __future__ import annotations

from pathlib import Path

# Folders of examples/ that hold no rule set: the systemd unit, the Grafana dashboard and the
# Prometheus alert rules (docs/observability.md).
NOT_RULE_SETS = ("systemd", "grafana", "prometheus")

BASE_FILES: dict[str, str] = {
    "account.yaml": """\
version: 1
account:
  id: DU0000001
gateway: {host: 127.0.0.1, port: 4002, client_id: 17}
risk:
  max_order_value: 50000
  max_position_fraction: 0.25
  max_risk_per_trade_fraction: 0.01
  max_daily_loss_fraction: 0.03
  allowed_symbols: [AAPL, MSFT, NVDA, AMZN, SPY, TLT, GLD, QQQ]
schedule:
  reconcile_every: 30s
  rebalance: {cron: "45 15 * * mon-fri", timezone: America/New_York}
records: {dir: var/records}
""",
    "core.yaml": """\
version: 1
allocations:
  core:
    capital: {fraction_of_nav: 0.6}
    order: {type: limit, offset_bps: 10}
    targets:
      SPY: 0.25
      TLT: 0.25
      MSFT: 0.2
""",
    "entries.yaml": """\
version: 1
brackets:
  nvda-dip:
    symbol: NVDA
    side: BUY
    quantity: 100
    entry: {limit: 170.0}
    stop_loss: {price: 160.0}
    take_profit: {price: 195.0}
scales:
  amzn-ladder:
    symbol: AMZN
    side: BUY
    total_quantity: 200
    levels: 5
    start_price: 220.0
    step: 2.5
""",
}


def write_rule_set(directory: Path, files: dict[str, str | bytes]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        target = directory / name
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")
    return directory
