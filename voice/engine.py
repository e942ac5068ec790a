"""The conversation engine: models loaded once per process, one pipecat pipeline per call.

Every bridge calls ``ConversationEngine.run_call`` with its own pipecat transport; the pipeline
is the same whatever the way in:

    transport.input() → CallerTurnProcessor → DialogueProcessor → SpeechSynthesisProcessor
                      → transport.output()
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.runner import PipelineRunner
from pipecat.pipeline.task import PipelineParams, PipelineTask
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.transports.base_transport import BaseTransport

from kb.answers import GroundedAnswerer
from kb.backend import DEMO_TODAY, Backend, BackendError, HttpBackend, SqliteBackend
from kb.embeddings import EmbeddingModelError
from kb.generative import answerer_from_settings
from kb.index import KnowledgeBase
from nlu.assistant import Answerer, Assistant
from nlu.classifier import IntentClassifier
from nlu.escalation import EscalationModel, EscalationSettings
from nlu.flows import FlowContext
from nlu.summary import handoff_summary
from review.handoffs import AgentDesk
from review.redaction import Word, redact, redact_words
from review.repository import CallRepository
from voice.asr import WhisperTranscriber
from voice.handover import Handover, TransferControl
from voice.listening import CallerTurnProcessor, ListeningParams
from voice.mood import ESCALATION_ANNOUNCEMENT, CallMood
from voice.recording import AssistantAudioTap, CallerAudioTap, CallRecording
from voice.session import CallSession
from voice.settings import Settings
from voice.speaking import DialogueProcessor, SpeechSynthesisProcessor
from voice.tts import PiperSynthesizer
from voice.vad import SileroModel, SileroStream, SmartTurnModel

log = logging.getLogger("iva.engine")


@dataclass
class SpeechModels:
    """The models every call shares."""

    asr: WhisperTranscriber
    tts: PiperSynthesizer
    vad: SileroModel
    turn: SmartTurnModel | None

    @classmethod
    def load(cls, settings: Settings) -> SpeechModels:
        started = time.perf_counter()
        models = cls(
            asr=WhisperTranscriber.from_settings(settings),
            tts=PiperSynthesizer(settings.tts_voice, length_scale=settings.tts_length_scale),
            vad=SileroModel(),
            turn=SmartTurnModel() if settings.turn_model else None,
        )
        log.info("speech models ready in %.1f s", time.perf_counter() - started)
        return models


class ConversationEngine:
    """Shared by all calls of the process; holds models, knowledge and the call store."""

    def __init__(self, settings: Settings, *, models: SpeechModels, store: CallRepository,
                 backend: Backend | None = None,
                 classifier: IntentClassifier | None = None) -> None:
        self.settings = settings
        self.models = models
        self.store = store
        self.classifier = classifier or IntentClassifier.default()
        self.backend = backend or backend_from_settings(settings)
        self.business_date = business_date(settings, self.backend)
        self.knowledge, self.answerer = load_knowledge(settings)
        self._warn_unknown_topics()
        self._knowledge_lock = threading.Lock()
        self.desk = AgentDesk(store)
        self.escalation_model = EscalationModel.default(settings.escalation_weights_path) \
            if settings.escalation else None
        self.escalation_settings = EscalationSettings(
            threshold=settings.escalation_threshold, margin=settings.escalation_margin,
            smoothing=settings.escalation_smoothing, prior=settings.escalation_prior,
            weights_path=settings.escalation_weights_path,
        )
        # ASR, turn model and TTS are CPU-bound; they run here, off the event loop.
        self.executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="iva-model")
        self.active_calls = 0
        self._stopping = threading.Event()
        self.speech_cache_warm = False
        self.calls_total = 0
        self.params = ListeningParams(
            vad_threshold=settings.vad_threshold,
            speech_start_ms=settings.speech_start_ms,
            hesitation_ms=settings.speculate_after_ms,
            pause_ms=settings.end_of_turn_silence_ms,
            timeout_ms=settings.incomplete_turn_silence_ms,
            dictation_timeout_ms=settings.dictation_silence_ms,
            barge_in_min_speech_ms=settings.barge_in_min_speech_ms,
            backchannel_max_ms=settings.backchannel_max_ms,
            barge_in_check_ms=settings.barge_in_check_ms,
            max_turn_ms=int(settings.max_turn_seconds * 1000),
            backchannels=tuple(settings.backchannels),
        )

    def phrases(self) -> list[str]:
        """What the assistant is likely to say: the greeting, its fixed replies and every
        sentence of the knowledge base (answers are extractive)."""
        from kb.answers import DONT_KNOW, split_sentences
        from nlu import assistant as fixed

        texts = [self.settings.greeting, DONT_KNOW, fixed.DIDNT_CATCH, fixed.TO_AGENT,
                 fixed.ANYTHING_ELSE, fixed.ANYTHING_ELSE_AFTER_TASK, fixed.WHAT_ELSE,
                 fixed.HOW_CAN_I_HELP, fixed.KEYPAD_UNUSED, fixed.STILL_UNSURE,
                 fixed.SAY_IT_DIFFERENTLY, fixed.NO_AGENT, fixed.CALLBACK_BOOKED,
                 fixed.LEAVE_MESSAGE, fixed.MESSAGE_TAKEN, fixed.NO_CALLBACK,
                 ESCALATION_ANNOUNCEMENT,
                 f"Thank you for calling {self.settings.company_name}. Goodbye."]
        for passage in self.knowledge.passages:
            texts.extend(split_sentences(passage.text))
        return texts

    def reload_knowledge(self) -> int:
        """Re-read the KB documents; calls that start afterwards use them. Returns the number
        of passages. A KB that fails to load leaves the current one in place and raises."""
        with self._knowledge_lock:
            knowledge, answerer = load_knowledge(self.settings)
            self.knowledge, self.answerer = knowledge, answerer
        log.info("knowledge base reloaded: %d passages", len(knowledge))
        self._warn_unknown_topics()
        return len(knowledge)

    def _warn_unknown_topics(self) -> None:
        """Log the intents KB front matter names that the classifier does not know (a typo, or
        an intent not trained yet): such a document is still searched, but never as a topic."""
        for intent in sorted(self.knowledge.intents - set(self.classifier.labels)):
            log.warning("KB documents %s name the intent %r, which the intent classifier does "
                        "not know; check the spelling in their front matter",
                        ", ".join(sorted(self.knowledge.documents_about(intent))), intent)

    def new_assistant(self, call_id: str, caller: str | None) -> Assistant:
        """The dialogue state of one call."""
        context = FlowContext(self.backend, call_id=call_id, caller_phone=caller,
                              today=self.business_date)
        return Assistant(classifier=self.classifier, answerer=self.answerer, context=context,
                         threshold=self.settings.intent_confidence,
                         company=self.settings.company_name)

    def start_warming_speech(self) -> threading.Thread:
        """Fill the TTS cache in the background, yielding to live calls."""
        thread = threading.Thread(target=self._warm_speech, name="iva-tts-warm", daemon=True)
        thread.start()
        return thread

    def _warm_speech(self) -> None:
        started = time.perf_counter()
        made = self.models.tts.warm(self.phrases(), busy=lambda: self.active_calls > 0,
                                    stop=self._stopping)
        self.speech_cache_warm = True
        log.info("TTS cache warm: %d sentences in %.1f s", made, time.perf_counter() - started)

    def new_session(self, channel: str) -> CallSession:
        return CallSession(self.store, channel=channel)

    def summarize(self, session: CallSession, assistant: Assistant, reason: str) -> dict[str, Any]:
        """The handoff summary of a call (``nlu.summary``), with the customer the caller ID
        matches, if any."""
        customer = membership = None
        try:
            if session.caller:
                customer = self.backend.customer_by_phone(session.caller)
            if customer is not None:
                membership = self.backend.membership(customer.id)
        except BackendError as exc:
            log.warning("call %s: customer lookup for the handoff failed: %s", session.call_id, exc)
        plus = membership.benefits_on(self.business_date) if membership is not None else None
        return handoff_summary(reason=reason, caller=session.caller, customer=customer,
                               plus_member=plus, context=assistant.handoff_context(),
                               sentiment=session.sentiment_summary())

    # --- following a call after its transfer (telephony.twilio.monitor.MonitorSink) ---------

    def vad_stream(self) -> SileroStream:
        return self.models.vad.stream()

    async def transcribe(self, audio: np.ndarray) -> str:
        loop = asyncio.get_running_loop()
        transcript = await loop.run_in_executor(self.executor, self.models.asr.transcribe, audio)
        return transcript.text

    def record_after_transfer(self, call_id: str, turn: dict[str, Any]) -> None:
        """A caller or agent utterance after the transfer: into the call record (times from
        the call's start) and onto the desk."""
        record = self.store.get_call(call_id)
        if record is None:
            log.warning("monitor stream for unknown call %s: utterance dropped", call_id)
            return
        started = datetime.fromisoformat(record["started_at"])
        offset_ms = int((turn.pop("stream_started_at") - started).total_seconds() * 1000)
        turn = {**turn, "start_ms": turn["start_ms"] + offset_ms,
                "end_ms": turn["end_ms"] + offset_ms}
        redaction = redact(turn["text"])
        turn["text"] = redaction.text
        meta: dict[str, Any] = {"after_transfer": True}
        if redaction.spans:
            meta["redacted"] = sorted({span.kind for span in redaction.spans})
        self.store.add_turn(call_id, speaker=turn["speaker"], text=turn["text"],
                            start_ms=max(0, turn["start_ms"]), end_ms=max(0, turn["end_ms"]),
                            meta=meta)
        self.desk.add_transcript(call_id, turn)

    def monitor_finished(self, call_id: str) -> None:
        self.desk.stop_following(call_id)

    async def speak(self, text: str) -> tuple[bytes, int]:
        """``text`` in the assistant's voice (PCM16 mono, its rate), synthesized off the event
        loop: the briefing a SIP agent hears before a warm transfer (``telephony.sip.bridge``)."""
        loop = asyncio.get_running_loop()
        pcm = await loop.run_in_executor(self.executor, self.models.tts.synthesize, text)
        return pcm, self.models.tts.sample_rate

    def build_call(self, *, transport: BaseTransport, session: CallSession,
                   audio_out_rate: int, control: TransferControl | None = None) -> PipelineTask:
        """The call's pipeline around the bridge's transport, ready to ``run``. ``control`` is
        the bridge's call control (transfers); without one, handoffs end in a callback offer."""
        settings = self.settings
        mood = None
        if self.escalation_model is not None:
            mood = CallMood(
                self.escalation_model, self.escalation_settings,
                baseline_seconds=settings.sentiment_baseline_seconds,
                on_live=lambda turn: session.event(
                    "sentiment_live", score=round(turn.score, 3), label=turn.label,
                    arousal=round(turn.voice_arousal, 3)),
            )
            session.mood_summary = mood.summary

        # A bridge that reaches only its own kind of agent (a browser call: an agent answering
        # in the browser) names that target; the others use the configured one.
        target = getattr(control, "fixed_target", None) or settings.transfer_target

        def handover(dialogue: DialogueProcessor) -> Handover:
            return Handover(session=session, desk=self.desk, control=control,
                            target=target, timeout_s=settings.handoff_timeout_s,
                            push=dialogue.push_downstream, summarize=self.summarize,
                            sentiment=session.sentiment_summary, hold_audio=settings.hold_audio,
                            audio_out_rate=lambda: audio_out_rate)

        taps_in: list[FrameProcessor] = []
        taps_out: list[FrameProcessor] = []
        if settings.recordings:
            recording = CallRecording(session.now_ms)
            taps_in.append(CallerAudioTap(recording))
            taps_out.append(AssistantAudioTap(recording))
            session.on_end.append(lambda: self.executor.submit(self._finish_recording, session,
                                                               recording))
        pipeline = Pipeline([
            transport.input(),
            *taps_in,
            CallerTurnProcessor(session=session, vad=self.models.vad, turn_model=self.models.turn,
                                asr=self.models.asr, executor=self.executor, params=self.params,
                                voice_sink=mood),
            DialogueProcessor(session=session, greeting=self.settings.greeting,
                              assistant_factory=self.new_assistant,
                              dtmf_timeout_s=self.settings.dtmf_timeout_s,
                              handover_factory=handover, mood=mood),
            SpeechSynthesisProcessor(session=session, synthesizer=self.models.tts,
                                     executor=self.executor),
            *taps_out,
            transport.output(),
        ])
        return PipelineTask(
            pipeline,
            params=PipelineParams(audio_in_sample_rate=16_000, audio_out_sample_rate=audio_out_rate),
            enable_rtvi=False,
            idle_timeout_secs=None,
        )

    def _finish_recording(self, session: CallSession, recording: CallRecording) -> None:
        """Write the call's recording (off the event loop)."""
        if not session.call_id:
            return
        path = self.settings.recordings_folder / f"{session.call_id}.wav"
        for start_ms, end_ms in session.pii_spans_ms:
            recording.silence_caller(self._pii_intervals(recording, start_ms, end_ms))
        try:
            recording.write(path)
        except OSError as exc:
            log.error("call %s: recording not written: %s", session.call_id, exc)
            return
        log.info("call %s: recording written (%s)", session.call_id, path.name)

    def _pii_intervals(self, recording: CallRecording, start_ms: int,
                       end_ms: int) -> list[tuple[float, float]]:
        """Where, in seconds from the call's start, the PII of a turn was said: the turn is
        transcribed again with word timestamps and redacted word by word. When the words do
        not line up with the redaction (the recogniser heard it differently this time), the
        whole turn is silenced: better a silent turn than a card number in a recording."""
        whole = [(start_ms / 1000, end_ms / 1000)]
        try:
            words = self.models.asr.words(recording.caller_audio(start_ms, end_ms))
        except Exception:
            log.exception("word timestamps failed; the whole turn is silenced")
            return whole
        _, intervals = redact_words([Word(w.text, w.start_s, w.end_s) for w in words])
        if not intervals:
            return whole
        return [(start_ms / 1000 + a, start_ms / 1000 + b) for a, b in intervals]

    def recording_path(self, call_id: str) -> Path | None:
        """The recording of ``call_id``, if there is one."""
        if not call_id or "/" in call_id or "\\" in call_id or call_id.startswith("."):
            return None
        path = self.settings.recordings_folder / f"{call_id}.wav"
        return path if path.is_file() else None

    async def run(self, task: PipelineTask) -> None:
        """Run one call's pipeline until the call ends."""
        self.active_calls += 1
        self.calls_total += 1
        try:
            runner = PipelineRunner(handle_sigint=False, handle_sigterm=False)
            await runner.add_workers(task)
            await runner.run()
        finally:
            self.active_calls -= 1

    def close(self) -> None:
        self._stopping.set()
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.store.close()
        close_backend = getattr(self.backend, "close", None)
        if close_backend is not None:
            close_backend()


def backend_from_settings(settings: Settings) -> Backend:
    """The HTTP CRM/OMS when ``backend_url`` is set, else the embedded SQLite backend (created
    and seeded with the demo company's data on first use)."""
    if settings.backend_url:
        return HttpBackend(settings.backend_url, token=settings.backend_token)
    path = settings.backend_database_path or settings.data_dir / "backend.sqlite3"
    return SqliteBackend(path, today=business_date(settings, None))


def business_date(settings: Settings, backend: Backend | None) -> date:
    """The business day the flows reason about: the setting, else the demo's day for the
    embedded demo backend (its orders are dated around it), else today."""
    if settings.business_date:
        return date.fromisoformat(settings.business_date)
    if backend is None or isinstance(backend, SqliteBackend):
        return DEMO_TODAY
    return date.today()


def load_knowledge(settings: Settings) -> tuple[KnowledgeBase, Answerer]:
    """The knowledge base of ``settings.kb_dir`` (default: the demo KB) and its answerer."""
    from kb import DEMO_KB_DIR

    folder = settings.kb_dir or DEMO_KB_DIR
    try:
        knowledge = KnowledgeBase.from_directory(folder, embeddings=settings.kb_embeddings)
    except EmbeddingModelError as exc:
        log.warning("KB embeddings unavailable (%s); retrieval is BM25 only. ./scripts/run "
                    "installs the model package.", exc)
        knowledge = KnowledgeBase.from_directory(folder, embeddings=False)
    return knowledge, answerer_from_settings(settings, GroundedAnswerer(knowledge))


async def warm_up(models: SpeechModels, executor: ThreadPoolExecutor) -> None:
    """Run each model once so the first caller does not pay for lazy initialisation."""
    import numpy as np

    loop = asyncio.get_running_loop()
    silence = np.zeros(16_000, dtype=np.float32)
    await loop.run_in_executor(executor, models.asr.transcribe, silence)
    if models.turn is not None:
        await loop.run_in_executor(executor, models.turn.completion_probability, silence)
