"""Errors say whether retrying helps: a permanent connect failure puts the daemon in a visible
degraded state instead of a retry loop; a temporary one is retried with the backoff."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.daemon.e2e_support import ACCOUNT_RULES, DaemonProcess, Wire, ladder, write_atomically
from tests.daemon.fakes import FakeSession, eventually, rules_text
from tests.daemon.test_supervisor import command, notifications, run, running
from tradectl.errors import PermanentError, TemporaryError
from tradectl.ib import AccountRefused, GatewayUnreachable, check_account
from tradectl.journal import Journal
from tradectl.journal.store import JournalAccountMismatch
from tradectl.sim import SimThread


@pytest.mark.parametrize(
    ("account", "managed"),
    [("DU0000001", ["DU0000002"]), ("U1234567", ["U1234567"])],
    ids=["not-managed", "live-without-live-true"],
)
def test_a_refused_account_is_permanent(account: str, managed: list[str]) -> None:
    with pytest.raises(AccountRefused) as refused:
        check_account(account, False, managed)
    assert isinstance(refused.value, PermanentError)


def test_an_unreachable_gateway_is_temporary() -> None:
    assert issubclass(GatewayUnreachable, TemporaryError)
    assert not issubclass(GatewayUnreachable, PermanentError)


def test_a_journal_bound_to_another_account_is_permanent(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    try:
        journal.bind_account("DU0000001")
        with pytest.raises(JournalAccountMismatch, match="belongs to account DU0000001"):
            journal.bind_account("DU0000002")
        assert issubclass(JournalAccountMismatch, PermanentError)
    finally:
        journal.close()


def test_a_refused_account_degrades_visibly_without_retrying_until_the_rules_change(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        session = FakeSession()
        session.connect_error = AccountRefused(
            "account DU0000001 is not among the gateway's managed accounts (DU0000009)"
        )
        async with running(tmp_path, session) as daemon:
            await eventually(lambda: daemon.connection == "refused")
            status = await command(daemon, "status")
            connection = status["connection"]
            assert connection["state"] == "refused"  # type: ignore[index]
            assert "not among the gateway's managed accounts" in connection["error"]  # type: ignore[index]
            assert any(
                "STATUS=REFUSED: AccountRefused: account DU0000001" in message
                for message in notifications(daemon)
            )
            assert "reconcile" not in session.calls
            # A rule change may fix it: the daemon connects once more, and only then. The
            # reconnect backoff is 10-50 ms, so a retry loop would have connected many times
            # while the watcher debounced the edit.
            session.connect_error = None
            (daemon.settings.rules_dir / "rules.yaml").write_text(rules_text(quantity=20))
            await eventually(lambda: "reconcile" in session.calls)
            assert session.calls.count("connect") == 2
            assert (await command(daemon, "status"))["connection"]["state"] == "connected"  # type: ignore[index]

    run(scenario())


def test_sigterm_stops_a_refused_daemon_cleanly(tmp_path: Path) -> None:
    async def scenario() -> None:
        session = FakeSession()
        session.connect_error = AccountRefused("account U1234567 is a live account")
        async with running(tmp_path, session) as daemon:
            await eventually(lambda: daemon.connection == "refused")
        assert session.calls.count("connect") == 1
        assert session.calls[-1] == "close"

    run(scenario())


@pytest.mark.parametrize(
    "error",
    [
        GatewayUnreachable("cannot connect to the IB gateway"),
        TemporaryError("gateway restarting", delay=0.01),
    ],
    ids=["adapter-unreachable", "own-delay"],
)
def test_a_temporary_error_is_retried(tmp_path: Path, error: Exception) -> None:
    async def scenario() -> None:
        session = FakeSession()
        session.connect_error = error
        async with running(tmp_path, session) as daemon:
            await eventually(lambda: session.calls.count("connect") >= 3)
            assert daemon.connection != "refused"
            session.connect_error = None
            await eventually(lambda: "reconcile" in session.calls)

    run(scenario())


@pytest.mark.e2e
def test_a_wrong_account_against_the_sim_waits_degraded_until_the_rules_fix_it(
    tmp_path: Path, sim: SimThread, wire: Wire, started: list[DaemonProcess]
) -> None:
    directory = tmp_path / "rules"
    directory.mkdir()
    account = ACCOUNT_RULES.format(port=sim.port, every="1h")
    (directory / "account.yaml").write_text(account.replace("DU0000001", "DU0000009"))
    (directory / "rules.yaml").write_text("version: 1\nscales:\n" + ladder("dip", "MSFT", 400))
    daemon = DaemonProcess(directory, tmp_path / "state", tmp_path / "tradectl.log").start()
    started.append(daemon)

    daemon.wait_message("cannot trade through the gateway", timeout=30)
    status = daemon.status()
    assert status["connection"]["state"] == "refused"
    assert "DU0000009 is not among the gateway's managed accounts" in status["connection"]["error"]
    assert wire.placed() == []

    mark = len(daemon.lines())
    write_atomically(directory / "account.yaml", account)
    daemon.wait_message("rules changed: connecting again", timeout=30, after=mark)
    wire.wait_placed(lambda placed: len(placed) == 2, 30, "the ladder once the account is right")
    refusals = [line for line in daemon.lines() if "cannot trade through" in line["message"]]
    assert len(refusals) == 1, "retried a refusal no retry fixes"
    assert daemon.stop()[0] == 0
