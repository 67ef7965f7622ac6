"""A running, idle daemon holds only what it uses (issue #17: idle RSS within 60 MB): no numpy
(ib_insync's event library imports it for array operators tradectl never calls), no pyarrow
(records batches only), no pandas (the sim's calendars), no matplotlib (reports). Read from
outside, in the compiled modules the daemon process has mapped."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.daemon.e2e_support import DaemonProcess, Wire, ladder
from tests.daemon.test_e2e import owned, prices, rules_dir, start_daemon
from tradectl.sim import SimThread

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads /proc/PID/maps"),
]

# Packages with compiled modules that an idle daemon must not have loaded.
NOT_AT_IDLE = ("numpy", "pyarrow", "pandas", "matplotlib")


def mapped_packages(pid: int) -> set[str]:
    """The site-packages packages with a shared object mapped into the process."""
    found: set[str] = set()
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        path = line.split(maxsplit=5)[-1]
        if "site-packages" + os.sep in path:
            found.add(path.split("site-packages" + os.sep, 1)[1].split(os.sep, 1)[0])
    return found


def test_an_idle_daemon_has_not_loaded_numpy_pyarrow_or_pandas(
    tmp_path: Path, sim: SimThread, wire: Wire, started: list[DaemonProcess]
) -> None:
    directory = rules_dir(tmp_path, sim, "version: 1\nscales:\n" + ladder("dip", "AAPL", 200))
    daemon = start_daemon(started, directory, tmp_path)
    wire.wait_placed(lambda placed: prices(owned(placed, "dip")) == {200.0, 199.0}, 30, "ladder")
    daemon.wait_message("pass complete", timeout=30)
    assert daemon.process is not None
    packages = mapped_packages(daemon.process.pid)
    # The check itself works: the daemon's own compiled dependencies are seen.
    assert "pydantic_core" in packages, sorted(packages)
    assert [name for name in NOT_AT_IDLE if any(p.startswith(name) for p in packages)] == []
