"""Leave the process as soon as a one-shot command is done, without tearing its modules down.

After ``tradectl apply`` returns, the interpreter's own exit spends 0.1–0.2 s destroying the
module graph it loaded (ib_insync, pydantic, pyarrow and pandas for the records export) and its
objects: time the user waits for nothing, since the command has closed its journal, written
its records and printed its result by then (docs/apply.md, "Start and exit").
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import NoReturn

# What CPython's exit returns when it cannot flush stdout (a closed pipe, a full disk).
EXIT_FLUSH_FAILED = 120


def exit_without_teardown(code: int) -> NoReturn:
    """End the process with ``code`` once what the normal exit would still do is done: the
    atexit handlers (logging's flush among them) and the flush of stdout and stderr. While any
    other non-daemon thread runs, the normal exit waits for it as always. Daemon threads (an
    abandoned records upload) end as the normal exit ends them: their work is redone later."""
    others = [
        thread
        for thread in threading.enumerate()
        if thread is not threading.main_thread() and not thread.daemon
    ]
    if others:
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            code = code or EXIT_FLUSH_FAILED
    os._exit(code)
