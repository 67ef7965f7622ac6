"""Saved rule files are reported once per burst, and reading them is not a change."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from watchdog.events import (
    FileClosedEvent,
    FileClosedNoWriteEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileOpenedEvent,
)

from tradectl.service.watcher import Debouncer, RulesWatcher, is_relevant_event, is_relevant_name


def test_debouncer_fires_once_after_a_burst() -> None:
    async def scenario() -> None:
        fired: list[float] = []
        done = asyncio.Event()
        loop = asyncio.get_running_loop()

        def callback() -> None:
            fired.append(loop.time())
            done.set()

        debouncer = Debouncer(0.05, callback)
        last_poke = 0.0
        for _ in range(20):
            debouncer.poke()
            last_poke = loop.time()
            await asyncio.sleep(0.005)
        await asyncio.wait_for(done.wait(), 2)
        assert len(fired) == 1
        assert fired[0] - last_poke >= 0.05
        assert not debouncer.pending

    asyncio.run(scenario())


def test_the_first_poke_of_each_burst_is_heard_at_once() -> None:
    async def scenario() -> None:
        started: list[int] = []
        fired: list[int] = []
        done = asyncio.Event()

        def callback() -> None:
            fired.append(len(started))
            done.set()

        debouncer = Debouncer(0.05, callback, on_start=lambda: started.append(len(fired)))
        for burst in range(2):
            done.clear()
            for _ in range(5):
                debouncer.poke()
            # Heard at the first poke, before the burst's callback.
            assert started == list(range(burst + 1))
            await asyncio.wait_for(done.wait(), 2)
        assert fired == [1, 2]

    asyncio.run(scenario())


def test_relevant_names() -> None:
    assert is_relevant_name("core.yaml")
    assert is_relevant_name("brackets.yml")
    assert is_relevant_name("HALT")
    assert not is_relevant_name(".core.yaml.swp")
    assert not is_relevant_name(".#core.yaml")
    assert not is_relevant_name("core.yaml~")
    assert not is_relevant_name("4913")
    assert not is_relevant_name("notes.txt")


def _watch(directory: Path, debounce: float):  # type: ignore[no-untyped-def]
    changes: asyncio.Queue[float] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    watcher = RulesWatcher(directory, lambda: changes.put_nowait(loop.time()), debounce)
    watcher.start()
    return watcher, changes


def test_an_editor_save_burst_is_one_change(tmp_path: Path) -> None:
    rule_file = tmp_path / "core.yaml"
    rule_file.write_text("version: 1\n")

    async def scenario() -> None:
        watcher, changes = _watch(tmp_path, 0.15)
        try:
            # What vim does on :w — backup, write a temp file, rename over, touch the swap file.
            (tmp_path / "core.yaml~").write_text("version: 1\n")
            (tmp_path / ".core.yaml.swp").write_bytes(b"\0")
            temp = tmp_path / "4913"
            temp.write_text("version: 1\n# edited\n")
            os.replace(temp, rule_file)
            (tmp_path / "core.yaml~").unlink()
            await asyncio.wait_for(changes.get(), 2)
            assert changes.empty()
            (tmp_path / "HALT").touch()
            await asyncio.wait_for(changes.get(), 2)
        finally:
            watcher.stop()

    asyncio.run(scenario())


def test_reads_and_unrelated_files_are_not_changes(tmp_path: Path) -> None:
    rule = str(tmp_path / "core.yaml")
    assert not is_relevant_event(FileOpenedEvent(rule))
    assert not is_relevant_event(FileClosedNoWriteEvent(rule))
    assert not is_relevant_event(FileModifiedEvent(str(tmp_path / "README.txt")))
    assert not is_relevant_event(FileCreatedEvent(str(tmp_path / ".core.yaml.swp")))
    assert is_relevant_event(FileClosedEvent(rule))
    assert is_relevant_event(FileMovedEvent(str(tmp_path / "4913"), rule))
    assert is_relevant_event(FileMovedEvent(rule, str(tmp_path / "core.yaml.bak")))
    assert is_relevant_event(FileDeletedEvent(str(tmp_path / "HALT")))
