import subprocess
import sys


def test_help_lists_tradectl() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tradectl", "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert "tradectl" in result.stdout
