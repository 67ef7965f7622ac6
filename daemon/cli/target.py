"""Which state directory a command works on, and how it says that no daemon runs there.

Every command resolves the state directory the same way (``resolve_state_dir``, docs/daemon.md
"The state directory"); the commands that steer a running daemon (status, halt, resume) also
look in the other default (real or ``--sim``) so that a miss names where the daemon actually is.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tradectl.journal.store import JOURNAL_FILE, resolve_state_dir
from tradectl.service.control import DaemonNotRunning, send_command, socket_path

NO_DAEMON = 3


def state_dir_of(args: argparse.Namespace) -> Path:
    return resolve_state_dir(args.state_dir, sim=bool(getattr(args, "sim", False)))


def has_journal(state_dir: Path) -> bool:
    return (state_dir / JOURNAL_FILE).is_file()


def not_running(args: argparse.Namespace, state_dir: Path) -> str:
    """What was looked for and where, and where a daemon does run when the other default has
    one."""
    message = (
        f"no tradectl daemon is running on {state_dir} (no answer on {socket_path(state_dir)})"
    )
    if args.state_dir:
        return message
    sim = bool(getattr(args, "sim", False))
    other = resolve_state_dir(None, sim=not sim)
    try:
        send_command(other, "status", timeout=5)
    except (DaemonNotRunning, OSError):
        hint = "pass --state-dir D (or set $TRADECTL_STATE_DIR) to the daemon's state directory"
        return f"{message}; {hint}"
    flag = "without --sim" if sim else "with --sim"
    return f"{message}; a daemon started {flag} runs on {other}: run the command {flag}"
