"""Watching the rules directory: debounced change notifications from watchdog.

Editors save in bursts (write a temp file, rename it over the original, touch a backup), so a
change is reported once the directory has been quiet for ``debounce`` seconds. Watchdog calls
back on its own thread; everything after the hand-over runs on the event loop.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

from watchdog.events import (
    EVENT_TYPE_CLOSED,
    EVENT_TYPE_CREATED,
    EVENT_TYPE_DELETED,
    EVENT_TYPE_MODIFIED,
    EVENT_TYPE_MOVED,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from tradectl.schemas.loader import HALT_FILE_NAME, is_rule_file_name

DEFAULT_DEBOUNCE_SECONDS = 0.15

# Opening or merely reading a file is not a change; the loader itself reads every file, and
# reacting to that would reload forever.
_CHANGE_EVENTS = frozenset(
    {
        EVENT_TYPE_CREATED,
        EVENT_TYPE_DELETED,
        EVENT_TYPE_MODIFIED,
        EVENT_TYPE_MOVED,
        EVENT_TYPE_CLOSED,
    }
)


def is_relevant_name(name: str) -> bool:
    """True for names that can change the rule set (exactly the files the loader reads) or the
    halt state."""
    return name == HALT_FILE_NAME or is_rule_file_name(name)


def _path_text(path: str | bytes) -> str:
    return os.fsdecode(path)


def is_relevant_event(event: FileSystemEvent, also: frozenset[str] = frozenset()) -> bool:
    """True for a change of a rule file, the HALT file, or a path in ``also`` (the targets
    files of the current rules, as absolute paths)."""
    if event.event_type not in _CHANGE_EVENTS:
        return False
    if event.is_directory and event.event_type != EVENT_TYPE_MOVED:
        # A directory named HALT halts too (schemas.loader.halt_present).
        return os.path.basename(_path_text(event.src_path)) == HALT_FILE_NAME
    paths = [_path_text(event.src_path)]
    if event.event_type == EVENT_TYPE_MOVED:
        paths.append(_path_text(event.dest_path))
    return any(
        is_relevant_name(os.path.basename(path)) or os.path.abspath(path) in also for path in paths
    )


class Debouncer:
    """Calls ``callback`` once ``delay`` seconds have passed without another ``poke``, and
    ``on_start`` at the first poke of each quiet period."""

    def __init__(
        self,
        delay: float,
        callback: Callable[[], None],
        on_start: Callable[[], None] = lambda: None,
    ) -> None:
        if delay < 0:
            raise ValueError("debounce delay must be >= 0")
        self.delay = delay
        self._callback = callback
        self._on_start = on_start
        self._handle: asyncio.TimerHandle | None = None

    def poke(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        else:
            self._on_start()
        self._handle = asyncio.get_running_loop().call_later(self.delay, self._fire)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    @property
    def pending(self) -> bool:
        return self._handle is not None

    def _fire(self) -> None:
        self._handle = None
        self._callback()


class _Handler(FileSystemEventHandler):
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        debouncer: Debouncer,
        also: Callable[[], frozenset[str]],
    ) -> None:
        self._loop = loop
        self._debouncer = debouncer
        self._also = also

    def on_any_event(self, event: FileSystemEvent) -> None:
        if is_relevant_event(event, self._also()) and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._debouncer.poke)


class RulesWatcher:
    """Reports debounced changes of the rule files (and the HALT file) in one directory, and of
    the files ``also`` names that lie inside it (targets files); ``on_first_change`` hears the
    first change of each burst at once."""

    def __init__(
        self,
        directory: Path,
        on_change: Callable[[], None],
        debounce: float,
        also: Callable[[], frozenset[str]] = frozenset,
        on_first_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.directory = directory
        self._debouncer = Debouncer(debounce, on_change, on_first_change)
        self._also = also
        self._observer: Observer | None = None  # type: ignore[valid-type]

    def start(self) -> None:
        observer = Observer()
        handler = _Handler(asyncio.get_running_loop(), self._debouncer, self._also)
        observer.schedule(handler, str(self.directory), recursive=True)
        observer.daemon = True
        observer.start()
        self._observer = observer

    def stop(self) -> None:
        self._debouncer.cancel()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=2)
            self._observer = None
