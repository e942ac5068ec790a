"""The one settings object of the service.

Built once at start-up (``Settings()`` reads ``IVA_*`` environment variables and, when
``IVA_CONFIG`` names one, a TOML file) and passed down explicitly: no module keeps its own
copy. Every field has an embedded default that needs nothing installed by hand; the
models default to the ones shipped in PyPI packages (see ``voice.models``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class Settings(BaseSettings):
    """Everything an operator can set, as ``IVA_<NAME>`` or in the TOML file named by ``IVA_CONFIG``."""

    model_config = SettingsConfigDict(env_prefix="IVA_", extra="forbid")

    # --- serving -----------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    log_level: str = "INFO"
    data_dir: Path = Path("var")
    database_path: Path | None = Field(
        default=None, description="SQLite file for call records; default <data_dir>/calls.sqlite3"
    )
    database_url: str | None = Field(
        default=None, repr=False,
        description="postgresql://user:pass@host/db for call records in PostgreSQL; unset: SQLite",
    )
    retention_days: int = Field(
        default=0, ge=0, description="Delete call records and recordings older than this (0: keep)",
    )
    public_url: str | None = Field(
        default=None,
        description="Base URL Twilio reaches us at (https://iva.example.com); default from the request",
    )

    # --- Twilio --------------------------------------------------------------------------
    twilio_auth_token: str | None = Field(
        default=None, description="When set, X-Twilio-Signature is checked on /twilio/voice"
    )
    max_message_bytes: int = Field(
        default=64 * 1024, ge=1024, description="Largest WebSocket message a caller may send"
    )
    twilio_account_sid: str | None = Field(
        default=None, description="Account SID for transfers through Twilio's REST API",
    )
    twilio_api_base_url: str = Field(
        default="https://api.twilio.com", description="Twilio's REST API (tests use a stand-in)",
    )

    # --- Asterisk (docs/asterisk.md) --------------------------------------------------------
    audiosocket_enabled: bool = Field(
        default=True, description="Listen for Asterisk AudioSocket connections (TCP)",
    )
    audiosocket_host: str = Field(
        default="127.0.0.1", description="Address the AudioSocket listener binds",
    )
    audiosocket_port: int = Field(
        default=9092, ge=0, le=65535, description="AudioSocket TCP port (0: any free port, logged)",
    )
    ari_url: str | None = Field(
        default=None, description="Asterisk's HTTP server for ARI, e.g. http://127.0.0.1:8088; "
        "unset: no ARI transfers",
    )
    ari_user: str | None = Field(default=None, description="ARI user (ari.conf)")
    ari_password: str | None = Field(
        default=None, repr=False, description="ARI password (ari.conf)",
    )
    ari_context: str | None = Field(
        default=None, description="Dialplan context for transfer targets that are a bare extension",
    )

    # --- direct SIP (telephony/sip) ---------------------------------------------------------
    sip_enabled: bool = Field(default=True, description="Answer SIP calls over UDP and TCP")
    sip_host: str = Field(default="127.0.0.1", description="Address the SIP and RTP sockets bind")
    sip_port: int = Field(
        default=5060, ge=0, le=65535, description="SIP port, UDP and TCP (0: any free port, logged)",
    )
    sip_public_address: str | None = Field(
        default=None, description="Address put in SDP and Contact when it differs from IVA_SIP_HOST",
    )
    rtp_port_min: int = Field(default=20000, ge=0, le=65535, description="Lowest RTP port (0: any)")
    rtp_port_max: int = Field(default=20999, ge=0, le=65535, description="Highest RTP port")
    sip_auth_user: str | None = Field(
        default=None, description="Digest user INVITEs must authenticate as (unset: no auth)",
    )
    sip_auth_password: str | None = Field(default=None, repr=False, description="Digest password")
    sip_auth_realm: str = Field(default="iva", description="Digest realm")
    sip_allow: str | None = Field(
        default=None, description="Comma-separated IPs/CIDRs allowed to send SIP (unset: any); "
        "others get 403",
    )
    sip_ring_s: float = Field(
        default=0.0, ge=0.0, le=30.0, description="Seconds of 180 Ringing before answering",
    )

    # --- warm transfer to a human ---------------------------------------------------------
    transfer_target: str | None = Field(
        default=None,
        description="Where accepted handoffs go: +15550199, sip:agent@pbx, client:NAME or queue:NAME",
    )
    handoff_timeout_s: float = Field(
        default=45.0, gt=0.0, le=600.0,
        description="How long a caller waits on hold for an agent before a callback is offered",
    )
    hold_audio: bool = Field(default=True, description="Play hold tones while the caller waits")
    escalation: bool = Field(
        default=True, description="Hand frustrated callers to a human before it boils over",
    )
    escalation_threshold: float = Field(
        default=0.7, gt=0.0, le=1.0, description="Smoothed risk at which a call is handed over",
    )
    escalation_margin: float = Field(
        default=0.15, ge=0.0, lt=1.0,
        description="Two turns in a row at threshold minus this also hand the call over",
    )
    escalation_smoothing: float = Field(
        default=0.3, ge=0.0, lt=1.0, description="Weight of the previous turn's risk",
    )
    escalation_prior: float = Field(default=0.1, ge=0.0, le=1.0,
                                    description="The risk before the first turn")
    escalation_weights_path: Path | None = Field(
        default=None, description="Fitted escalation weights (JSON); default the shipped model",
    )
    sentiment_baseline_seconds: float = Field(
        default=3.0, gt=0.0, le=30.0,
        description="Speech at the start of a call that sets the caller's own voice baseline",
    )

    # --- transfers of direct SIP calls (telephony/sip/control.py) ---------------------------
    sip_transfer_mode: Literal["refer", "bridge"] | None = Field(
        default=None,
        description="refer: blind transfer, the caller's phone calls the target (RFC 3515); "
        "bridge: warm, the service calls the agent, briefs them and relays the audio, still "
        "transcribing; unset: bridge",
    )
    sip_transfer_briefing: bool = Field(
        default=True, description="Speak the handoff summary to the agent before bridging the caller",
    )
    sip_agent_answer_timeout_s: float = Field(
        default=30.0, gt=0.0, le=300.0,
        description="How long the agent's phone may ring before a bridge transfer fails",
    )
    sip_refer_timeout_s: float = Field(
        default=30.0, gt=0.0, le=300.0,
        description="How long a REFER may take to report success (NOTIFY 200) before it fails",
    )

    # --- browser calls (WebRTC, /call) ------------------------------------------------------
    webrtc_ice_servers: str = Field(
        default="",
        description="STUN/TURN servers for browser calls: comma-separated stun:/turn: URLs, or "
        'JSON [{"urls": "turn:turn.example.com:3478", "username": "u", "credential": "p"}]; '
        "empty: none (same host or LAN)",
    )
    webrtc_host_addresses: str = Field(
        default="",
        description="Local IP addresses offered as host ICE candidates for browser calls, "
        "comma-separated (e.g. 127.0.0.1 for a browser on the same machine); empty: every "
        "non-loopback interface",
    )
    webrtc_max_calls: int = Field(
        default=8, ge=0, le=1000,
        description="Browser calls at once; more are refused with 503 (0: browser calling off)",
    )

    # --- access: people and programs --------------------------------------------------------
    admin_user: str | None = Field(
        default=None, description="Username of the first supervisor, created when there are no users")
    admin_password: str | None = Field(
        default=None, repr=False,
        description="Password of the first supervisor (8+ characters); with neither set one is generated and printed once")
    api_token: str | None = Field(
        default=None, repr=False,
        description="Bearer token for programs on /api/* (Authorization: Bearer ...); unset: tokens refused")
    session_secret: str | None = Field(
        default=None, repr=False, min_length=16,
        description="Signs login cookies; default a random key kept in <data_dir>/session.key")
    session_hours: float = Field(default=12.0, gt=0.0, le=720.0, description="How long a login lasts")
    users_database_path: Path | None = Field(
        default=None, description="SQLite file of users; default <data_dir>/users.sqlite3")

    # --- recordings -------------------------------------------------------------------------
    recordings: bool = Field(
        default=True,
        description="Keep a stereo WAV per call (caller left, assistant right), PII silenced",
    )
    recordings_dir: Path | None = Field(
        default=None, description="Where recordings go; default <data_dir>/recordings",
    )

    # --- speech recognition (faster-whisper) ---------------------------------------------
    asr_model: str | None = Field(
        default=None,
        description="tiny.en (the default, embedded), base (more accurate, slower; needs the "
        "asr-base extra, see docs/benchmarks.md) or a CTranslate2 model directory",
    )
    asr_threads: int = Field(
        default=1, ge=1, description="Threads per transcription (1 lets ASR and the turn model run side by side on 2 cores)"
    )
    asr_beam_size: int = Field(
        default=5, ge=1, le=16,
        description="Beam search width; 5 hears telephone speech better than greedy 1 (word "
        "error rate 39.5 % -> 34.7 % on espeak-ng callers) for ~10-25 % more ASR compute",
    )
    asr_hypotheses: int = Field(
        default=5, ge=1, le=16,
        description="How many of the beam's transcripts the intent classifier weighs (at most "
        "the beam size; 1: the best only). Disagreeing hypotheses lower the confidence, so "
        "fewer misheard turns are acted on (espeak-ng callers, dev split: confident wrong intents "
        "12 -> 4, one in eight right ones confirmed first); ~20 ms more routing per turn",
    )
    asr_language: str = "en"
    asr_vocabulary: str = Field(
        default="Brightline, Brightline Plus membership, order number, refund, return, "
        "express shipping, warranty, gift card.",
        description="Words callers use that the ASR should expect (names, products)",
    )
    asr_window_s: float = Field(
        default=10.0, ge=3.0, le=30.0,
        description="Shortest audio window whisper encodes; shorter is faster, 30 is whisper's own",
    )

    # --- speech synthesis (piper) -------------------------------------------------------
    tts_voice: Path | None = Field(
        default=None,
        description="piper voice .onnx (with its .onnx.json beside it); default: en_US-joe-medium",
    )
    tts_length_scale: float = Field(default=1.0, gt=0.2, lt=3.0)
    tts_warm_cache: bool = Field(
        default=True,
        description="At start, synthesize the KB's sentences and fixed replies in the background "
        "(paused during calls) so answers start without waiting for piper",
    )

    # --- turn-taking and barge-in --------------------------------------------------------
    vad_threshold: float = Field(default=0.5, gt=0.0, lt=1.0)
    speech_start_ms: int = Field(
        default=60, ge=20, description="Speech needed before a caller turn is considered started"
    )
    speculate_after_ms: int = Field(
        default=120, ge=40,
        description="Silence after which ASR and the turn model start, speculatively",
    )
    end_of_turn_silence_ms: int = Field(
        default=200, ge=60,
        description="Silence after speech that ends a caller turn the turn model judges complete",
    )
    incomplete_turn_silence_ms: int = Field(
        default=800,
        ge=60,
        description="Silence that ends a turn the turn model judges unfinished",
    )
    dictation_silence_ms: int = Field(
        default=1500,
        ge=60,
        description="Silence that ends a turn while the caller is dictating digits (an order number)",
    )
    barge_in_min_speech_ms: int = Field(
        default=200, ge=40, description="Speech over the assistant that can interrupt it"
    )
    barge_in_check_ms: int = Field(
        default=400, ge=100,
        description="Speech over the assistant after which its words are checked: anything but "
        "a backchannel interrupts at once",
    )
    backchannel_max_ms: int = Field(
        default=700,
        ge=100,
        description="Speech over the assistant longer than this interrupts at once; shorter "
        "bursts interrupt unless they are backchannels",
    )
    turn_model: bool = Field(
        default=True, description="Ask pipecat's smart-turn model whether a pause ends the turn"
    )
    backchannels: list[str] = Field(
        default_factory=lambda: [
            "uh-huh", "uh huh", "mm-hmm", "mhm", "mm", "hmm", "okay", "ok", "right", "yeah", "yes",
            "yep", "sure", "i see", "got it", "alright", "all right",
        ],
        description="Short words that never interrupt the assistant",
    )
    max_turn_seconds: float = Field(default=20.0, gt=1.0)

    # --- knowledge base and conversation -------------------------------------------------
    kb_dir: Path | None = Field(
        default=None, description="Folder of Markdown KB documents; default: the Brightline demo KB"
    )
    company_name: str = "Brightline"
    greeting: str = "Hi, thanks for calling Brightline. How can I help you today?"
    intent_confidence: float = Field(
        default=0.85, ge=0.0, le=1.0,
        description="Below this intent confidence the assistant asks one clarifying question",
    )
    dtmf_timeout_s: float = Field(
        default=5.0, gt=0.0, le=60.0,
        description="Keypad digits typed without the # key are taken after this many seconds",
    )
    kb_embeddings: bool = Field(
        default=True, description="Hybrid KB retrieval: add sentence embeddings to BM25",
    )
    backend_database_path: Path | None = Field(
        default=None,
        description="SQLite file of customers, orders and memberships; default <data_dir>/backend.sqlite3",
    )
    backend_url: str | None = Field(
        default=None, description="Base URL of an HTTP CRM/OMS (docs/backend-api.md) instead of SQLite",
    )
    backend_token: str | None = Field(default=None, description="Bearer token for the HTTP CRM/OMS")
    business_date: str | None = Field(
        default=None,
        description="The business day as YYYY-MM-DD; default today (the demo data is set on 2026-05-06)",
    )

    # --- optional generative answers (any OpenAI-compatible endpoint) ---------------------
    llm_base_url: str | None = Field(
        default=None, description="e.g. http://127.0.0.1:11434/v1; unset: extractive answers only",
    )
    llm_model: str = "gpt-4o-mini"
    llm_api_key: str | None = None
    llm_timeout_s: float = Field(default=2.0, gt=0.0, le=30.0)

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("log_level must be DEBUG, INFO, WARNING or ERROR")
        return level

    @field_validator("webrtc_ice_servers")
    @classmethod
    def _readable_ice_servers(cls, value: str) -> str:
        from telephony.webrtc.signalling import parse_ice_servers

        parse_ice_servers(value)  # raises a ValueError naming what is wrong
        return value

    @field_validator("webrtc_host_addresses")
    @classmethod
    def _ip_addresses(cls, value: str) -> str:
        from telephony.webrtc.signalling import parse_host_addresses

        parse_host_addresses(value)  # raises a ValueError naming the bad address
        return value

    @property
    def users_database_file(self) -> Path:
        return self.users_database_path or self.data_dir / "users.sqlite3"

    @property
    def recordings_folder(self) -> Path:
        return self.recordings_dir or self.data_dir / "recordings"

    @property
    def database_file(self) -> Path:
        return self.database_path or self.data_dir / "calls.sqlite3"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("IVA_CONFIG")
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)


def load_settings(**overrides: Any) -> Settings:
    """Build the settings; a bad value raises ``pydantic.ValidationError`` naming the field."""
    if "IVA_CONFIG" in os.environ and not Path(os.environ["IVA_CONFIG"]).is_file():
        raise FileNotFoundError(f"IVA_CONFIG names {os.environ['IVA_CONFIG']}, which is not a file")
    return Settings(**overrides)
