"""One meaning for HALT: anything named HALT in the rules directory halts every command, a
regular file, a directory and a dangling symbolic link alike."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from watchdog.events import DirCreatedEvent, DirDeletedEvent

from tests.daemon.fakes import FakeSession, eventually
from tests.daemon.test_supervisor import run as run_scenario
from tests.daemon.test_supervisor import running
from tradectl.schemas.loader import halt_present
from tradectl.service.watcher import is_relevant_event

from .support import REPO, tradectl


def regular_file(path: Path) -> None:
    path.touch()


def directory(path: Path) -> None:
    path.mkdir()


def dangling_symlink(path: Path) -> None:
    path.symlink_to(path.with_name("nowhere"))


def unreadable_file(path: Path) -> None:
    path.touch()
    path.chmod(0)


HALTS: list[Callable[[Path], None]] = [regular_file, directory, dangling_symlink, unreadable_file]


@pytest.mark.parametrize("make_halt", HALTS)
def test_anything_named_halt_halts(make_halt: Callable[[Path], None], tmp_path: Path) -> None:
    assert not halt_present(tmp_path)
    make_halt(tmp_path / "HALT")
    assert halt_present(tmp_path)
    assert halt_present(tmp_path / "core.yaml")


def test_the_watcher_sees_a_halt_directory(tmp_path: Path) -> None:
    assert is_relevant_event(DirCreatedEvent(str(tmp_path / "HALT")))
    assert is_relevant_event(DirDeletedEvent(str(tmp_path / "HALT")))
    assert not is_relevant_event(DirCreatedEvent(str(tmp_path / "backup")))


@pytest.mark.e2e
@pytest.mark.parametrize("make_halt", [directory, dangling_symlink])
def test_plan_and_apply_hold_every_order_back(
    make_halt: Callable[[Path], None], tmp_path: Path
) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(REPO / "rules", rules)
    make_halt(rules / "HALT")
    state = tmp_path / "state"
    planned = tradectl("plan", str(rules), "--sim", "--state-dir", str(state), cwd=tmp_path)
    assert "HALTED: every intent is blocked" in planned.stdout, planned.stderr
    applied = tradectl(
        "apply", str(rules), "--sim", "--yes", "--state-dir", str(state), cwd=tmp_path
    )
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "trading is halted, nothing will be sent" in applied.stderr
    assert "Nothing to send" in applied.stdout


@pytest.mark.parametrize("make_halt", [directory, dangling_symlink])
def test_the_daemon_halts_while_it_exists(
    make_halt: Callable[[Path], None], tmp_path: Path
) -> None:
    async def scenario() -> None:
        session = FakeSession()
        async with running(tmp_path, session) as daemon:
            await eventually(lambda: "reconcile" in session.calls)
            make_halt(daemon.settings.rules_dir / "HALT")
            await eventually(lambda: session.contexts[-1].halted)
            halt = daemon.settings.rules_dir / "HALT"
            if halt.is_dir() and not halt.is_symlink():
                halt.rmdir()
            else:
                halt.unlink()
            await eventually(lambda: not session.contexts[-1].halted)

    run_scenario(scenario())
