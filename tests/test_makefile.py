"""`make demo` installs only what the demo needs and shows progress; `make test` still gets the
test tools. (The time to the first order from a fresh clone is measured by hand: docs/daemon.md.)"""

from __future__ import annotations

import re
from pathlib import Path

MAKEFILE = (Path(__file__).resolve().parents[1] / "Makefile").read_text()


def _recipe(target: str) -> list[str]:
    match = re.search(rf"^{re.escape(target)}:[^\n]*\n((?:\t[^\n]*\n)+)", MAKEFILE, re.M)
    assert match is not None, target
    return [line.strip() for line in match.group(1).splitlines()]


def test_demo_installs_the_runtime_only_and_shows_progress() -> None:
    demo_prerequisite = re.search(r"^demo: (\S+)", MAKEFILE, re.M)
    assert demo_prerequisite is not None
    stamp = demo_prerequisite.group(1)
    assert stamp == "$(DEMO_STAMP)"
    installs = [line for line in _recipe(stamp) if "pip install" in line]
    assert installs == [installs[0]] and installs[0].endswith("-e .")
    assert "[test]" not in installs[0] and "--quiet" not in installs[0]


def test_make_test_installs_the_test_tools() -> None:
    assert re.search(r"^test: \$\(STAMP\)", MAKEFILE, re.M)
    assert any("-e '.[test]'" in line for line in _recipe("$(STAMP)"))
