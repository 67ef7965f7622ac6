"""A real GCS emulator (gcp-storage-emulator) on a free loopback port, file-backed so it can be
stopped and started again on the same port without losing objects.

gcp-storage-emulator ignores ``ifGenerationMatch``, which real GCS enforces and the uploader's
exactly-once guarantee rests on; ``_enforce_generation_match`` adds GCS's behaviour (412
Precondition Failed when ``ifGenerationMatch=0`` and the object exists) and counts what was
stored, so the tests can tell one upload from two.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from gcp_storage_emulator import server as emulator_server
from gcp_storage_emulator.exceptions import NotFound
from gcp_storage_emulator.handlers import objects as emulator_objects
from gcp_storage_emulator.server import create_server

from tradectl.records.gcs import client_from_environment

BUCKET = "tradectl-records"


@dataclass
class UploadHooks:
    stored: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    pause_after: int | None = None
    landed: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def pause_after_store(self, count: int) -> None:
        """Hold the response of the ``count``-th stored object (1-based) until ``release``:
        the object has landed but the uploader has not heard back."""
        self.pause_after = count


def _object_name(request: Any) -> str | None:
    if "name" in request.query:
        return str(request.query["name"][0])
    data = request.data
    if isinstance(data, dict) and isinstance(data.get("meta"), dict):
        name = data["meta"].get("name")
        return None if name is None else str(name)
    return None


def _enforce_generation_match(original: Callable[..., Any], hooks: UploadHooks) -> Any:
    def insert(request: Any, response: Any, storage: Any, *args: Any, **kwargs: Any) -> Any:
        name = _object_name(request)
        bucket = request.params["bucket_name"]
        if request.query.get("ifGenerationMatch") == ["0"] and name is not None:
            try:
                storage.get_file_obj(bucket, name)
            except NotFound:
                pass
            else:
                hooks.rejected[name] += 1
                response.status = HTTPStatus.PRECONDITION_FAILED
                response.json(
                    {
                        "error": {
                            "code": 412,
                            "message": "At least one of the pre-conditions you specified did "
                            "not hold.",
                            "errors": [{"reason": "conditionNotMet"}],
                        }
                    }
                )
                return None
        result = original(request, response, storage, *args, **kwargs)
        if name is not None and response.status == HTTPStatus.OK:
            with hooks.lock:
                hooks.stored[name] += 1
                pause = hooks.pause_after is not None and sum(hooks.stored.values()) == (
                    hooks.pause_after
                )
            if pause:
                hooks.landed.set()
                hooks.release.wait(timeout=60)
        return result

    return insert


class Emulator:
    def __init__(self, data_dir: Path, hooks: UploadHooks) -> None:
        self.data_dir = data_dir
        self.hooks = hooks
        self.port = 0
        self._server: Any = None

    @property
    def host(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._server = create_server(
            "127.0.0.1", self.port, in_memory=False, data_dir=self.data_dir
        )
        self._server.start()
        # Port 0 on first start picks a free port; later starts reuse it (SO_REUSEADDR).
        self.port = self._server._api._httpd.server_address[1]

    def stop(self) -> None:
        if self._server is not None:
            self.hooks.release.set()
            self._server.stop()
            self._server = None

    def objects(self) -> dict[str, bytes]:
        client = client_from_environment()
        return {
            blob.name: blob.download_as_bytes(retry=None, timeout=10)
            for blob in client.list_blobs(BUCKET, retry=None, timeout=10)
        }

    def exec_ids(self, tmp_path: Path) -> list[str]:
        """Every execId in every fills object in the bucket (duplicates kept)."""
        found: list[str] = []
        fills = [data for name, data in self.objects().items() if "/fills/" in f"/{name}"]
        for index, data in enumerate(fills):
            path = tmp_path / f"downloaded-{index}.parquet"
            path.write_bytes(data)
            found.extend(pq.read_table(path).column("exec_id").to_pylist())
        return found


@pytest.fixture
def emulator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    hooks = UploadHooks()
    original = emulator_objects.insert
    guarded = _enforce_generation_match(original, hooks)
    monkeypatch.setattr(emulator_objects, "insert", guarded)
    for _, methods in emulator_server.HANDLERS:
        for method, handler in list(methods.items()):
            if handler is original:
                monkeypatch.setitem(methods, method, guarded)
    data_dir = tmp_path / "gcs-emulator"
    data_dir.mkdir()
    emu = Emulator(data_dir, hooks)
    emu.start()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emu.host)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    client_from_environment().create_bucket(BUCKET, retry=None, timeout=10)
    try:
        yield emu
    finally:
        emu.stop()
