"""A records export the reliability tests can SIGKILL mid-write:
``python -m tests.reliability.records_writer STATE_DIR RECORDS_DIR ACCOUNT``."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

from tradectl.records.service import RecordsService
from tradectl.schemas.models import Records


def main(state_dir: str, records_dir: str, account: str) -> None:
    service = RecordsService(
        Path(state_dir), Records(dir=records_dir), account, settle=timedelta(0)
    )
    print("ready", flush=True)
    service.flush_once()
    print("flushed", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])
