"""Suite-wide test settings."""

import os
from pathlib import Path

import pytest
from hypothesis import settings

# CI explores the same examples on every run, so a submission is judged on its own change and
# not on the luck of a new random draw; developers' runs keep drawing fresh examples (and keep
# the failures they find in .hypothesis/), which is where new bugs are found.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(autouse=True)
def private_state_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """Every test gets its own default state directory: a command run without --state-dir must
    never touch the developer's ~/.local/state/tradectl or another test's journal."""
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    monkeypatch.delenv("TRADECTL_STATE_DIR", raising=False)
    home = tmp_path_factory.mktemp("xdg-state")
    monkeypatch.setenv("XDG_STATE_HOME", str(home))
    return home
