"""The web service: one FastAPI app serving the bridges, the APIs and the pages on one port.

``create_app(settings)`` loads the models first (so the port only opens, and ``/healthz`` only
answers, once calls can be taken), unless a ready ``ConversationEngine`` is passed in, as the
tests do to share one set of models.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import FileResponse, PlainTextResponse

from kb.backend import BackendError
from kb.index import KnowledgeBaseError
from review.api import calls_router
from review.auth import Authenticator, Principal, auth_router, protect_api
from review.desk_api import desk_router
from review.kpi_api import kpi_router
from review.labels_api import labels_router
from review.pages import review_pages_router
from review.repository import open_store
from review.retention import retain_daily
from review.sessions import load_session_secret
from review.users import UserStore, ensure_admin
from telephony.asterisk.ari import AriConfig
from telephony.asterisk.audiosocket_server import AudioSocketServer
from telephony.asterisk.routes import asterisk_router
from telephony.sip.useragent import sip_user_agent
from telephony.twilio.routes import twilio_router
from telephony.webrtc.candidates import offer_host_addresses
from telephony.webrtc.routes import webrtc_router
from telephony.webrtc.signalling import parse_host_addresses, parse_ice_servers
from voice.engine import ConversationEngine, SpeechModels, warm_up
from voice.settings import Settings

log = logging.getLogger("iva.app")


def build_engine(settings: Settings) -> ConversationEngine:
    store = open_store(settings.database_url, settings.database_file)
    unfinished = store.mark_unfinished_calls()
    if unfinished:
        log.warning("%d call(s) were cut off by the last shutdown; marked as such", unfinished)
    return ConversationEngine(settings, models=SpeechModels.load(settings), store=store)


def build_auth(settings: Settings) -> tuple[UserStore, Authenticator]:
    """Users and the authenticator; the first supervisor is created if there are no users
    (from IVA_ADMIN_USER/IVA_ADMIN_PASSWORD, or generated and printed once)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    users = UserStore(settings.users_database_file)
    try:
        ensure_admin(users, settings.admin_user, settings.admin_password, sys.stderr.write)
        auth = Authenticator(
            users,
            secret=load_session_secret(settings.session_secret, settings.data_dir / "session.key"),
            api_token=settings.api_token, session_hours=settings.session_hours,
        )
    except BaseException:
        users.close()
        raise
    return users, auth


def ari_config(settings: Settings) -> AriConfig | None:
    """ARI for the Asterisk bridges' transfers, when ``IVA_ARI_URL`` is set."""
    if not settings.ari_url:
        return None
    if not settings.ari_user or not settings.ari_password:
        raise ValueError("IVA_ARI_URL needs IVA_ARI_USER and IVA_ARI_PASSWORD (an ari.conf user)")
    return AriConfig(settings.ari_url, settings.ari_user, settings.ari_password,
                     context=settings.ari_context)


def create_app(settings: Settings, *, engine: ConversationEngine | None = None) -> FastAPI:
    owned = engine is None
    ari = ari_config(settings)
    users, auth = build_auth(settings)  # before the models: a bad setting fails fast
    try:
        conversation = engine or build_engine(settings)
    except BaseException:
        users.close()
        raise
    audiosocket = (AudioSocketServer(conversation, host=settings.audiosocket_host,
                                     port=settings.audiosocket_port, ari=ari)
                   if settings.audiosocket_enabled else None)
    sip = sip_user_agent(conversation, settings) if settings.sip_enabled else None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await warm_up(conversation.models, conversation.executor)
        if settings.tts_warm_cache:
            conversation.start_warming_speech()
        log.info("ready to take calls on http://%s:%d", settings.host, settings.port)
        if audiosocket is not None:
            try:
                await audiosocket.start()
            except OSError as exc:  # the web service still runs; Asterisk cannot reach us
                log.error("AudioSocket listener not started on %s:%d: %s (set IVA_AUDIOSOCKET_PORT "
                          "or IVA_AUDIOSOCKET_ENABLED=false)", audiosocket.host, audiosocket.port,
                          exc.strerror or exc)
        if sip is not None:
            try:
                await sip.start()
            except OSError as exc:  # the rest of the service still runs
                log.error("SIP listener not started on %s:%d: %s (set IVA_SIP_PORT or "
                          "IVA_SIP_ENABLED=false)", sip.host, sip.port, exc.strerror or exc)
        retention = asyncio.create_task(retain_daily(
            conversation.store, settings.retention_days, settings.recordings_folder))
        try:
            yield
        finally:
            if audiosocket is not None:
                await audiosocket.stop()
            if sip is not None:
                await sip.stop()
            retention.cancel()
            users.close()
            if owned:
                conversation.close()

    app = FastAPI(title="IVA voice contact-center assistant", lifespan=lifespan)
    app.state.engine = conversation
    app.include_router(twilio_router(
        conversation, auth_token=settings.twilio_auth_token, public_url=settings.public_url,
        max_message_bytes=settings.max_message_bytes, account_sid=settings.twilio_account_sid,
        api_base_url=settings.twilio_api_base_url, monitor=conversation,
    ))
    app.include_router(asterisk_router(conversation, ari=ari,
                                       max_message_bytes=settings.max_message_bytes))
    app.state.auth = auth
    supervisor_only = Depends(auth.require("supervisor"))
    app.include_router(auth_router(auth))
    app.include_router(calls_router(conversation.store, principal=auth.require()))
    app.include_router(kpi_router(conversation.store, principal_page=auth.require("supervisor"),
                                  principal_api=auth.require("supervisor")))
    app.include_router(labels_router(conversation.store, reviewer=auth.require("supervisor"),
                                     intents=conversation.classifier.labels))
    app.include_router(review_pages_router(supervisor=auth.require("supervisor"),
                                           signed_in=auth.require()))
    app.include_router(desk_router(conversation.desk, principal=auth.require("agent"),
                                   websocket_principal=auth.authenticate_websocket))
    offer_host_addresses(parse_host_addresses(settings.webrtc_host_addresses))
    app.include_router(webrtc_router(
        conversation, desk=conversation.desk,
        ice_servers=parse_ice_servers(settings.webrtc_ice_servers),
        max_calls=settings.webrtc_max_calls, agent_answer_timeout_s=settings.handoff_timeout_s,
        agent=auth.require("agent"),
    ))
    protect_api(app, auth)  # every /api/* route needs a login or the API token

    @app.get("/healthz")
    async def healthz() -> dict[str, object]:
        return {"status": "ok", "active_calls": conversation.active_calls,
                "speech_cache_warm": conversation.speech_cache_warm}

    @app.get("/api/calls/{call_id}/audit")
    async def call_audit(call_id: str, _who: Principal = supervisor_only) -> dict[str, object]:
        """What the call did to accounts: the backend's audit entries tied to the call id."""
        try:
            entries = await asyncio.to_thread(conversation.backend.audit_log, call_id)
        except BackendError as exc:
            raise HTTPException(status_code=503, detail=f"backend unavailable: {exc}") from exc
        return {"call_id": call_id, "entries": [entry.to_json() for entry in entries]}

    @app.get("/api/calls/{call_id}/recording")
    async def call_recording(call_id: str, _who: Principal = supervisor_only) -> FileResponse:
        """The call's stereo WAV (caller left, assistant right), PII silenced."""
        path = conversation.recording_path(call_id)
        if path is None:
            raise HTTPException(status_code=404, detail=f"no recording for call {call_id}")
        return FileResponse(path, media_type="audio/wav", filename=f"{call_id}.wav")

    @app.get("/api/intents")
    async def intents() -> dict[str, list[str]]:
        """The intents the classifier knows (for correcting a turn's intent)."""
        return {"intents": sorted(conversation.classifier.labels)}

    @app.post("/api/kb/reload")
    async def reload_knowledge(_who: Principal = supervisor_only) -> dict[str, object]:
        """Re-read the KB documents (``iva kb reload``); calls that start afterwards use them.
        A KB that does not load is refused and the current one stays in service."""
        try:
            passages = await asyncio.to_thread(conversation.reload_knowledge)
        except (KnowledgeBaseError, OSError, ValueError) as exc:
            log.warning("knowledge base reload refused: %s", exc)
            raise HTTPException(status_code=422, detail=f"knowledge base not reloaded: {exc}") from exc
        if settings.tts_warm_cache:
            conversation.start_warming_speech()
        return {"status": "reloaded", "passages": passages}

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> str:
        return _prometheus(conversation)

    return app


def _prometheus(engine: ConversationEngine) -> str:
    lines = [
        "# HELP iva_active_calls Calls in progress.",
        "# TYPE iva_active_calls gauge",
        f"iva_active_calls {engine.active_calls}",
        "# HELP iva_calls_total Calls taken since start.",
        "# TYPE iva_calls_total counter",
        f"iva_calls_total {engine.calls_total}",
        "# HELP iva_tts_cache_hits_total Sentences spoken from the TTS cache.",
        "# TYPE iva_tts_cache_hits_total counter",
        f"iva_tts_cache_hits_total {engine.models.tts.cache_hits}",
    ]
    return "\n".join(lines) + "\n"
