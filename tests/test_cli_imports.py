"""A command loads only its own module: memory and start-up time a user notices."""

import subprocess
import sys
from pathlib import Path

HEAVY = ("pyarrow", "google.cloud.storage", "apscheduler", "watchdog")
# What `tradectl --help` and `tradectl validate` (run by editors and pre-commit on every save)
# must never load: the broker client, the records' and report's libraries, the daemon's extras
# and the sim's calendar.
NOT_FOR_A_QUICK_COMMAND = (
    "ib_insync",
    "ib_async",
    "pyarrow",
    "google.cloud.storage",
    "matplotlib",
    "apprise",
    "prometheus_client",
    "exchange_calendars",
    "pandas",
)
RULES = Path(__file__).resolve().parents[1] / "rules"


def loaded_after(*command: str, modules: tuple[str, ...] = HEAVY) -> dict[str, bool]:
    script = (
        "import sys\n"
        "from tradectl.cli import main\n"
        "try:\n"
        f"    code = main({list(command)!r})\n"
        "except SystemExit as exit:\n"
        "    code = exit.code\n"
        f"print(code, *[name in sys.modules for name in {modules!r}])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    code, *flags = result.stdout.split()[-1 - len(modules) :]
    assert code == "0", result.stdout + result.stderr
    return dict(zip(modules, (flag == "True" for flag in flags), strict=True))


def test_help_loads_no_command_module() -> None:
    # importlib.metadata (about 20 ms) is read for the version only when --version shows it.
    modules = (*NOT_FOR_A_QUICK_COMMAND, "pydantic", "tradectl.ib", "importlib.metadata")
    loaded = loaded_after("--help", modules=modules)
    assert not any(loaded.values()), loaded


def test_validate_loads_neither_the_broker_client_nor_the_heavy_extras() -> None:
    loaded = loaded_after("validate", str(RULES), modules=NOT_FOR_A_QUICK_COMMAND)
    assert not any(loaded.values()), loaded


def test_a_command_does_not_load_what_only_other_commands_need(tmp_path: Path) -> None:
    loaded = loaded_after("schema", "--out", str(tmp_path / "schema.json"))
    assert not any(loaded.values()), loaded
    assert (tmp_path / "schema.json").exists()


def test_help_still_lists_every_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tradectl", "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    for command in ("validate", "plan", "apply", "run", "status", "sim", "records"):
        assert command in result.stdout


def test_a_subcommands_own_help_works() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tradectl", "run", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert "--debounce" in result.stdout


def test_the_daemon_loads_the_cloud_storage_client_only_when_a_bucket_is_configured() -> None:
    script = "import sys, tradectl.cli.run\nprint('google.cloud.storage' in sys.modules)\n"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.split()[-1] == "False"


def test_the_daemon_loads_pyarrow_only_when_it_writes_a_batch(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "import daemon.cli.run\n"
        "from tradectl.journal import Journal\n"
        "from tradectl.records.service import RecordsService\n"
        "from tradectl.schemas.models import Records\n"
        f"Journal.open(Path({str(tmp_path / 'state')!r})).close()\n"
        f"records = Records(dir={str(tmp_path / 'records')!r})\n"
        f"report = RecordsService(Path({str(tmp_path / 'state')!r}), records, None).flush_once()\n"
        "print(len(report.batches), 'pyarrow' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", "from pathlib import Path\n" + script],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.split()[-2:] == ["0", "False"], result.stdout + result.stderr


def printed_by(script: str) -> list[str]:
    """What a fresh interpreter running ``script`` prints, split into words."""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    return result.stdout.split()


def test_ib_insync_comes_without_numpy_which_loads_on_first_use() -> None:
    script = (
        "import sys\n"
        "import tradectl.ib\n"
        "print('numpy' in sys.modules)\n"
        "import eventkit\n"
        "event = eventkit.Event()\n"
        "window = event.array(3)\n"
        "seen = []\n"
        "window.connect(lambda values: seen.append(float(values.sum())))\n"
        "for value in (1, 2, 3):\n"
        "    event.emit(value)\n"
        "import numpy\n"
        "print(seen[-1], type(sys.modules['numpy']).__name__, numpy.asarray([2, 2]).sum())\n"
    )
    assert printed_by(script) == ["False", "6.0", "module", "4"]


def test_apply_loads_the_export_libraries_on_demand_with_what_pyarrow_needs() -> None:
    script = (
        "import sys\n"
        "from tradectl.cli.apply import _load_export_libraries\n"
        "print('pyarrow' in sys.modules)\n"
        "_load_export_libraries()\n"
        "print(*[name in sys.modules for name in ('pyarrow', 'pandas', 'pyarrow.parquet')])\n"
    )
    assert printed_by(script) == ["False", "True", "True", "True"]
