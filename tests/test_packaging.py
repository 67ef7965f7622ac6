"""The wheel installs the import name `tradectl` only, so it can share an environment with
python-daemon (which owns the top-level `daemon`)."""

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def _run(*command: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", out, ROOT)
    (built,) = out.glob("tradectl-*.whl")
    return built


def test_the_wheel_holds_every_module_under_tradectl_and_nothing_else(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    top_levels = {name.split("/")[0] for name in names if not name.startswith("tradectl-")}
    assert top_levels == {"tradectl"}

    expected = {
        "tradectl/" + path.relative_to(ROOT / "daemon").as_posix()
        for path in (ROOT / "daemon").rglob("*.py")
    } | {
        "tradectl/schemas/" + path.relative_to(ROOT / "schemas").as_posix()
        for path in (ROOT / "schemas").rglob("*.py")
    }
    missing = sorted(expected - names)
    assert not missing, f"add their packages to [tool.setuptools] packages: {missing}"
    assert "tradectl/schemas/rules.schema.json" in names
    assert "tradectl/sim/default_state.yaml" in names


def test_tradectl_and_python_daemon_import_side_by_side(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    _run(python, "-m", "pip", "install", "--quiet", "--no-deps", wheel, "python-daemon")
    # The dependencies come from the test environment's site-packages, added as a plain path:
    # its .pth files (among them the editable install of this checkout) are not processed.
    site = Path(
        _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip()
    )
    (site / "zz_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    probe = (
        "import daemon, tradectl, tradectl.schemas.loader, tradectl.planner, tradectl.cli\n"
        "print(daemon.DaemonContext.__module__)\n"
        "print(tradectl.__file__)\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run(
        [str(python), "-c", probe], cwd=tmp_path, capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    daemon_module, tradectl_file = done.stdout.split()
    assert daemon_module == "daemon.daemon"
    assert Path(tradectl_file).is_relative_to(venv)
