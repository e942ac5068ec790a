"""baresip as a test phone: a caller that dials, or an agent that answers by itself
(``answermode=auto``); either plays a WAV as its microphone and records what it hears.

baresip 1.0 (Debian) has no file player, so the call's audio goes to ``aubridge`` (nowhere)
and the ``sndfile`` filter writes what was decoded to ``dump-*-dec.wav``: what a person on
that phone would have heard. ``net_interface`` pins its SDP address to the loopback, where
the server expects the RTP to come from.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import IO

from telephony.audio import read_wav

CONFIG = """poll_method\t\tepoll
sip_listen\t\t127.0.0.1:{listen}
net_interface\t\t127.0.0.1
audio_source\t\taufile,{source}
audio_player\t\taubridge,nowhere
audio_alert\t\taubridge,nowhere
audio_srate\t\t8000
audio_channels\t\t1
module_path\t\t/usr/lib/baresip/modules
module\t\t\tg711.so
module\t\t\taufile.so
module\t\t\taubridge.so
module\t\t\tsndfile.so
module_app\t\taccount.so
module_app\t\tmenu.so
snd_path\t\t{folder}
"""


class BaresipCaller:
    def __init__(self, folder: Path, *, question: Path, user: str = "5550105",
                 lead_s: float = 5.0) -> None:
        self.folder = folder / "baresip"
        self.folder.mkdir(parents=True, exist_ok=True)
        source = self.folder / "question.wav"
        # 8 kHz 16-bit, after lead_s of silence (the greeting) and with silence to listen
        subprocess.run(["sox", str(question), "-r", "8000", "-c", "1", "-b", "16", "-e",
                        "signed-integer", str(source), "pad", str(lead_s), "30"], check=True)
        (self.folder / "config").write_text(CONFIG.format(source=source, folder=self.folder, listen=0))
        (self.folder / "accounts").write_text(f"<sip:{user}@127.0.0.1>;regint=0\n")
        self.log = self.folder / "baresip.log"

    def call(self, uri: str, *, seconds: float) -> bytes:
        """Dial ``uri``, stay ``seconds``, hang up; 8 kHz PCM of what was heard."""
        with self.log.open("wb") as log:
            subprocess.run(["baresip", "-f", str(self.folder), "-t", str(int(seconds)),
                            "-e", f"/dial {uri}"], stdout=log, stderr=subprocess.STDOUT,
                           timeout=seconds + 15, check=False)
        heard = sorted(self.folder.glob("dump-*-dec.wav"))
        if not heard:
            raise AssertionError(f"baresip recorded nothing:\n{self.log.read_text()[-2000:]}")
        pcm, rate = read_wav(heard[-1])
        assert rate == 8000, rate
        return pcm


class BaresipAgent:
    """An agent's phone at ``sip:agent@127.0.0.1:port`` that answers the first call at once and
    plays ``speech`` (8 kHz mono WAV) from the moment it answers; ``start`` it, then ``wait``."""

    def __init__(self, folder: Path, *, speech: Path, port: int) -> None:
        self.folder = folder / "baresip-agent"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = port
        source = self.folder / "speech.wav"
        subprocess.run(["sox", str(speech), "-r", "8000", "-c", "1", "-b", "16", "-e",
                        "signed-integer", str(source)], check=True)
        (self.folder / "config").write_text(CONFIG.format(source=source, folder=self.folder,
                                                          listen=port))
        (self.folder / "accounts").write_text(
            f"<sip:agent@127.0.0.1:{port}>;regint=0;answermode=auto\n")
        self.log = self.folder / "baresip.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"sip:agent@127.0.0.1:{self.port}"

    def start(self, *, seconds: float) -> None:
        """Run for ``seconds`` (then baresip quits, hanging up a call still up)."""
        self._log_file = self.log.open("wb")
        self._process = subprocess.Popen(["baresip", "-f", str(self.folder), "-t",
                                          str(int(seconds))], stdout=self._log_file,
                                         stderr=subprocess.STDOUT)

    def wait(self, *, timeout_s: float) -> bytes:
        """Wait for baresip to quit; 8 kHz PCM of what the agent heard."""
        assert self._process is not None and self._log_file is not None
        try:
            self._process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self._process.terminate()
            self._process.wait(timeout=10)
        self._log_file.close()
        heard = sorted(self.folder.glob("dump-*-dec.wav"))
        if not heard:
            raise AssertionError(f"the agent's baresip recorded nothing:\n"
                                 f"{self.log.read_text()[-2000:]}")
        pcm, rate = read_wav(heard[-1])
        assert rate == 8000, rate
        return pcm

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")
