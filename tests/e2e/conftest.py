"""End-to-end fixtures: the real ``iva serve`` on a free loopback port with the real models, and
test callers whose voices come from flite or espeak-ng (never the assistant's piper voice)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
# The test servers' credentials: a program's token and the first supervisor's login.
API_TOKEN = "e2e-api-token-0123456789abcdef"
ADMIN_USER, ADMIN_PASSWORD = "supervisor", "e2e supervisor password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    base_url: str
    ws_url: str
    log_path: Path
    process: subprocess.Popen[bytes]

    def get_json(self, path: str) -> object:
        """GET an API path as a program (with the API token)."""
        request = urllib.request.Request(self.base_url + path,
                                         headers={"Authorization": f"Bearer {API_TOKEN}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def post_json(self, path: str, body: object | None = None) -> object:
        """POST to an API path as a program (with the API token)."""
        data = b"" if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base_url + path, data=data, method="POST",
            headers={"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def call_record(self, call_id: str, *, wait_s: float = 5.0) -> dict:
        """The call's record once it has ended (the server writes it as the call closes)."""
        deadline = time.monotonic() + wait_s
        record: dict = {}
        while time.monotonic() < deadline:
            record = self.get_json(f"/api/calls/{call_id}")  # type: ignore[assignment]
            if record.get("ended_at"):
                return record
            time.sleep(0.1)
        return record

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_server(tmp: Path, env_extra: dict[str, str] | None = None) -> Server:
    port = free_port()
    env = {**os.environ, "IVA_DATA_DIR": str(tmp / "var"), "IVA_LOG_LEVEL": "INFO",
           "IVA_API_TOKEN": API_TOKEN, "IVA_ADMIN_USER": ADMIN_USER,
           "IVA_ADMIN_PASSWORD": ADMIN_PASSWORD,
           "IVA_AUDIOSOCKET_PORT": "0",  # servers side by side: no fight over 9092
           "IVA_SIP_PORT": "0", "IVA_RTP_PORT_MIN": "0",  # nor over 5060 and RTP ports
           "IVA_WEBRTC_HOST_ADDRESSES": "127.0.0.1",  # browser calls stay on the loopback
           **(env_extra or {})}
    log_path = tmp / "server.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "voice.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, env=env, stdout=log_path.open("wb"), stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=1) as response:
                if response.status == 200:
                    break
        except OSError:
            time.sleep(0.3)
    else:
        process.kill()
        raise RuntimeError(f"server did not become healthy:\n{log_path.read_text()}")
    return Server(base, f"ws://127.0.0.1:{port}/twilio/stream", log_path, process)


def stop_server(server: Server, log_name: str) -> None:
    """Stop a server from :func:`start_server` (killed if it takes over 15 s) and keep its log
    as ``tests/artifacts/<log_name>``."""
    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(server.log_path, ARTIFACTS / log_name)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("server")
    srv = start_server(tmp)
    yield srv
    stop_server(srv, "e2e-server.log")


class Voices:
    """Speech for the simulated callers from Debian's flite or espeak-ng."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._n = 0

    def say(self, text: str, *, voice: str = "flite", pitch: int = 50, speed: int = 155,
            amplitude: int = 100) -> Path:
        """``text`` spoken by flite (slt) or espeak-ng (en-us, with ``pitch`` 0-99, ``speed`` in
        words per minute and ``amplitude`` 0-200: an angry caller is higher, faster, louder)."""
        self._n += 1
        path = self.folder / f"caller-{self._n}.wav"
        if voice == "flite" and shutil.which("flite"):
            subprocess.run(["flite", "-voice", "slt", "-t", text, "-o", str(path)], check=True)
        elif shutil.which("espeak-ng"):
            subprocess.run(["espeak-ng", "-v", "en-us", "-s", str(speed), "-p", str(pitch),
                            "-a", str(amplitude), "-w", str(path), text], check=True)
        else:  # pragma: no cover - scripts/test installs both
            pytest.fail("neither flite nor espeak-ng is installed (scripts/test installs them)")
        return path


@pytest.fixture(scope="session")
def voices(tmp_path_factory: pytest.TempPathFactory) -> Voices:
    return Voices(tmp_path_factory.mktemp("voices"))


@pytest.fixture(scope="session")
def transcriber():
    """The real ASR, to check what the assistant said (its audio, transcribed back)."""
    from voice.asr import WhisperTranscriber

    # max_window_s=1: always faster-whisper's full transcription, with no cap on the length of
    # what it writes (the service's fast path caps tokens per second of audio).
    return WhisperTranscriber(min_window_s=30.0, max_window_s=1.0)
