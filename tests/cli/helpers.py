"""Running the `tradectl` command line as a user does: a subprocess in a given directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def tradectl(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``tradectl ARGS`` from ``cwd`` (stdin closed: nobody at a terminal), its output as text."""
    return subprocess.run(
        [sys.executable, "-m", "tradectl", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )
