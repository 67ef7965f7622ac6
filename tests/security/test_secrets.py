"""Secrets stay secret: a fake secret planted in the Cloud Storage credentials file, in the alert
URLs of the environment and in a records.gcs URL never shows up in any output: the log, status
(text and JSON), apply's output, validate's errors, records status, or any file in the state and
records directories."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from tests.daemon.e2e_support import wait_until

from .support import REPO, start_tradectl, tradectl

pytestmark = pytest.mark.e2e

SECRET = "tctl-planted-secret-5b1e"
GCS = 'records:\n  dir: records\n  gcs: "{url}"\n'


@pytest.fixture
def planted(tmp_path: Path) -> dict[str, str]:
    credentials = tmp_path / "secrets" / "gcs-key.json"
    credentials.parent.mkdir(mode=0o700)
    credentials.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "tctl-test",
                "private_key_id": SECRET,
                "private_key": f"-----BEGIN PRIVATE KEY-----\n{SECRET}\n-----END PRIVATE KEY-----",
                "client_email": "records@tctl-test.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": "https://oauth2.invalid/token",
            }
        )
    )
    credentials.chmod(0o600)
    return {
        "GOOGLE_APPLICATION_CREDENTIALS": str(credentials),
        "TRADECTL_ALERT_URLS": f"https://hooks.invalid/services/{SECRET}",
    }


def rules_with_gcs(tmp_path: Path, url: str) -> Path:
    rules = tmp_path / "rules"
    rules.mkdir(exist_ok=True)
    for source in (REPO / "rules").glob("*.yaml"):
        text = source.read_text()
        if source.name == "account.yaml":
            text = text.replace("records:\n  dir: records\n", GCS.format(url=url))
            assert url in text
        (rules / source.name).write_text(text)
    return rules


def test_a_planted_secret_appears_in_no_output(
    tmp_path: Path, planted: dict[str, str], processes: list[subprocess.Popen[bytes]]
) -> None:
    outputs: list[str] = []
    rules = rules_with_gcs(tmp_path, "gs://tctl-bucket/fills")
    state = tmp_path / "var" / "state"

    applied = tradectl(
        "apply", str(rules), "--sim", "--yes", "--state-dir", str(state), cwd=tmp_path, env=planted
    )
    outputs += [applied.stdout, applied.stderr]
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "records:" in applied.stdout  # the fills were exported, the upload was attempted

    log = tmp_path / "tradectl.log"
    daemon = start_tradectl(
        "run",
        str(rules),
        "--sim",
        "--state-dir",
        str(state),
        "--log-format",
        "json",
        cwd=tmp_path,
        log=log,
        env=planted,
    )
    processes.append(daemon)
    wait_until(lambda: "first sync complete" in log.read_text(), 90, "the daemon's first pass")
    (rules / "account.yaml").write_text(
        (rules / "account.yaml")
        .read_text()
        .replace("gs://tctl-bucket/fills", f"gs://records:{SECRET}@tctl-bucket/fills")
    )
    wait_until(lambda: "rule change rejected" in log.read_text(), 30, "the rejected change")
    for command in (("status",), ("status", "--json"), ("records", "status")):
        shown = tradectl(*command, "--state-dir", str(state), cwd=tmp_path, env=planted)
        assert shown.returncode == 0, shown.stderr
        outputs += [shown.stdout, shown.stderr]
    assert "DEGRADED" in outputs[-6]
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(30) == 0
    invalid = tradectl("validate", str(rules), cwd=tmp_path, env=planted)
    assert invalid.returncode == 1
    assert "records.gcs: must be a Cloud Storage location" in invalid.stdout
    outputs += [invalid.stdout, invalid.stderr]

    for text in outputs:
        assert SECRET not in text, text
    secrets_dir = tmp_path / "secrets"
    written = [
        path
        for path in tmp_path.rglob("*")
        if path.is_file() and secrets_dir not in path.parents and path.parent != rules
    ]
    assert log in written
    assert any(path.suffix == ".parquet" for path in written), written
    assert any(path.name == "journal.sqlite3" for path in written)
    leaks = [path for path in written if SECRET.encode() in path.read_bytes()]
    assert leaks == []


def test_a_credentials_file_others_can_read_is_refused(
    planted: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tradectl.records.gcs import client_from_environment

    credentials = Path(planted["GOOGLE_APPLICATION_CREDENTIALS"])
    credentials.chmod(0o644)
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(credentials))
    with pytest.raises(OSError, match=f"fix with `chmod 600 {credentials}`") as refused:
        client_from_environment()
    assert SECRET not in str(refused.value)
