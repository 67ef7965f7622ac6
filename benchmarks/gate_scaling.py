"""The risk gate's own time inside ``plan()`` for N allocation targets.

    .venv/bin/python -m benchmarks.gate_scaling [--repeat N] [--sizes 1000,20000] [--quick]

Same scenario as ``benchmarks/planner_scaling.py``. ``plan()`` runs ``--repeat`` times per size
with its call to the gate (``gate_drafted``) wrapped in a timer, so the gate is timed where it
runs: on the intents plan() has just drafted, with the account's data as plan() left the caches
(timing the gate on its own, over and over on the same intents, flatters it by about a third).
Best of ``--repeat``, wall and CPU. Then, at the largest size, the same plans under three rate
limits, so the cost of a blocked intent can be read beside a passed one.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Iterator
from contextlib import contextmanager

from benchmarks.planner_scaling import NOW, scenario, sizes_and_repeat
from benchmarks.support import machine
from tradectl.planner import plan
from tradectl.planner.domain import Observed, Plan
from tradectl.schemas.models import RuleSet

SIZES = (1_000, 5_000, 20_000, 50_000)
# The package exports the function plan() under the module's name; the module itself:
PLAN_MODULE = importlib.import_module("tradectl.planner.plan")


@contextmanager
def gate_timed(times: list[tuple[float, float]]) -> Iterator[None]:
    """While inside, each gate call of plan() appends its (wall, CPU) seconds to ``times``."""
    gate_drafted = PLAN_MODULE.gate_drafted

    def timed(drafted: Plan, rules: RuleSet, observed: Observed, *, distinct: bool = False) -> Plan:
        started, started_cpu = time.perf_counter(), time.process_time()
        gated: Plan = gate_drafted(drafted, rules, observed, distinct=distinct)
        times.append((time.perf_counter() - started, time.process_time() - started_cpu))
        return gated

    PLAN_MODULE.gate_drafted = timed
    try:
        yield
    finally:
        PLAN_MODULE.gate_drafted = gate_drafted


def gate_time(rules: RuleSet, observed: Observed, repeat: int) -> tuple[float, float, Plan]:
    """Best wall and CPU seconds of the gate inside ``repeat`` plans, and the last plan."""
    times: list[tuple[float, float]] = []
    planned = Plan()
    with gate_timed(times):
        for _ in range(repeat):
            del planned
            planned = plan(rules, observed, NOW)
    return min(wall for wall, _ in times), min(cpu for _, cpu in times), planned


def with_rate_limit(rules: RuleSet, limit: int) -> RuleSet:
    """``rules`` with another ``max_orders_per_minute``, past the schema's bound of 3,000 (a
    benchmark's knob to let everything through, not a rule anyone can write)."""
    risk = rules.risk.model_copy(update={"max_orders_per_minute": limit})
    return rules.model_copy(update={"risk": risk})


def main() -> None:
    sizes, repeat = sizes_and_repeat(__doc__.splitlines()[0], SIZES, (1_000,))

    print(
        f"{'targets':>8}  {'intents':>8}  {'blocked':>7}  {'gate ms':>8}  {'CPU ms':>8}  "
        f"{'µs/intent':>9}"
    )
    for size in sizes:
        rules, observed = scenario(size)
        wall, cpu, planned = gate_time(rules, observed, repeat)
        count = len(planned.intents)
        print(
            f"{size:>8,}  {count:>8,}  {len(planned.blocked) / count:>7.0%}  {wall * 1000:>8.1f}  "
            f"{cpu * 1000:>8.1f}  {wall / count * 1e6:>9.2f}"
        )
    print(f"the gate's own time inside plan(), wall and CPU; best of {repeat}")

    size = sizes[-1]
    rules, observed = scenario(size)
    print()
    print(f"{size:,} targets, the same plans under three rate limits:")
    print(f"{'max_orders_per_minute':>22}  {'blocked':>7}  {'gate ms':>8}  {'CPU µs/intent':>13}")
    for limit in (10_000_000, rules.risk.max_orders_per_minute, 1):
        wall, cpu, planned = gate_time(with_rate_limit(rules, limit), observed, repeat)
        count = len(planned.intents)
        print(
            f"{limit:>22,}  {len(planned.blocked) / count:>7.0%}  {wall * 1000:>8.1f}  "
            f"{cpu / count * 1e6:>13.2f}"
        )
    print(machine())


if __name__ == "__main__":
    main()
