"""The scripted schedules of the soak: every event at a fixed simulated time (New York)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from .harness import BASE_WEIGHTS, TILTED_WEIGHTS, Soak, ny

Events = dict[datetime, Callable[[], None]]
DAY_START = ny(20, 3)
WEEK_START = ny(20, 3)


def _open(soak: Soak, day: int) -> Events:
    """A session's first minutes: a step just after the open, then the allocation window
    (5 minutes after the open) and convergence."""
    soak.figures.sessions += 1
    return {
        ny(day, 9, 31): lambda: None,
        ny(day, 9, 36): lambda: soak.converge(f"after the open of {day} Nov"),
    }


def _fill_entry_while_down_then_partials(soak: Soak, day: int) -> Events:
    """The NVDA entry (300 shares, limit 175) fills in chunks of 100: the first while the
    daemon is SIGKILLed, the rest while it runs again."""

    def entered() -> None:
        soak.entered["nvda-dip"] = "NVDA"

    return {
        ny(day, 10, 29): soak.kill_daemon,
        ny(day, 10, 30): lambda: (soak.set_price("NVDA", 174.5), entered()),
        ny(day, 10, 31): soak.start_daemon,
        ny(day, 10, 32): lambda: None,
        ny(day, 10, 33): lambda: None,
    }


def _halt_with_a_rule_edit(soak: Soak, day: int, symbol: str) -> Events:
    def halt_and_tilt() -> None:
        soak.halt(symbol)
        soak.weights = dict(TILTED_WEIGHTS)
        soak.edit_rules("tilted weights (hot reload) while a symbol is halted")
        soak.converge(f"with {symbol} halted", excluded=(symbol,))

    def resume() -> None:
        soak.resume(symbol)
        soak.converge(f"after {symbol} resumed")

    return {ny(day, 11): halt_and_tilt, ny(day, 12): resume}


def _expect(condition: bool, what: str) -> None:
    assert condition, what


def one_day(soak: Soak) -> None:
    """Friday 20 Nov 2026, 03:00-20:00: the open, a SIGKILL with fills while down, partial
    fills, a halt with a hot reload, the close."""
    soak.start_daemon()
    events = {
        **_open(soak, 20),
        **_fill_entry_while_down_then_partials(soak, 20),
        **_halt_with_a_rule_edit(soak, 20, "QQQ"),
    }
    soak.run_until(ny(20, 20), events)


def week(soak: Soak) -> None:
    """Friday 20 Nov 03:00 to Saturday 28 Nov 01:00, 2026: five sessions (Fri 20, Mon 23,
    Tue 24, Wed 25, Fri 27, an early close at 13:00), a weekend and Thanksgiving (Thu 26)."""

    def swap_brackets() -> None:
        # nvda-dip's entry filled: removed, its protection must stay (an orphaned protection).
        soak.brackets = {"msft-open": "MSFT"}
        soak.entered["msft-open"] = "MSFT"
        soak.edit_rules("bracket nvda-dip removed after its fill; market bracket msft-open added")

    def lose_the_journal() -> None:
        soak.kill_daemon()
        soak.delete_journal()

    def target_hit_while_down() -> None:
        soak.kill_daemon()
        soak.set_price("MSFT", 500.0)

    def holiday_edit() -> None:
        soak.weights = dict(BASE_WEIGHTS)
        soak.edit_rules("base weights again, on the holiday")

    def move_stop_into_the_blackout() -> None:
        # A protective modify, the one kind of order sent at any hour: it must wait for the end
        # of IB's nightly reset (00:45), not go at midnight.
        soak.nvda_stop = 166.0
        soak.edit_rules("nvda-dip's stop moved to 166 at 23:50, inside the reset blackout")

    def tilt() -> None:
        soak.weights = dict(TILTED_WEIGHTS)
        soak.edit_rules("tilted weights")

    # The seed (TRADECTL_SOAK_SEED) moves the two unannounced SIGKILLs within their hour.
    journal_lost_at = ny(24, 7, soak.rng.randrange(0, 50))
    target_hit_at = ny(25, 11, soak.rng.randrange(0, 50))
    soak.start_daemon()
    events: Events = {
        **_open(soak, 20),
        **_fill_entry_while_down_then_partials(soak, 20),
        **_halt_with_a_rule_edit(soak, 20, "QQQ"),
        ny(20, 23, 50): move_stop_into_the_blackout,
        ny(21, 0): lambda: _expect(soak.stop_price("NVDA") == 165.0, "stop unchanged at 00:00"),
        ny(21, 0, 46): lambda: _expect(soak.stop_price("NVDA") == 166.0, "stop moved by 00:46"),
        ny(21, 12): soak.restart_gateway,
        ny(23, 6): swap_brackets,
        **_open(soak, 23),
        journal_lost_at: lose_the_journal,
        ny(24, 8): soak.start_daemon,
        **_open(soak, 24),
        ny(24, 11): lambda: (soak.weights.update(BASE_WEIGHTS), soak.edit_rules("base weights")),
        ny(24, 11, 2): lambda: soak.converge("after the rule edit of 24 Nov"),
        **_open(soak, 25),
        target_hit_at: target_hit_while_down,
        ny(25, 12): soak.start_daemon,
        ny(25, 14): tilt,
        ny(25, 14, 2): lambda: soak.converge("after the rule edit of 25 Nov"),
        ny(26, 10): holiday_edit,
        **_open(soak, 27),
    }
    soak.run_until(ny(28, 1), events)
