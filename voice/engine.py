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

from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.runner import PipelineRunner
from pipecat.pipeline.task import PipelineParams, PipelineTask
from pipecat.transports.base_transport import BaseTransport

from kb.answers import GroundedAnswerer
from kb.index import KnowledgeBase
from nlu.router import Router
from review.store import CallStore
from voice.asr import WhisperTranscriber
from voice.listening import CallerTurnProcessor, ListeningParams
from voice.session import CallSession
from voice.settings import Settings
from voice.speaking import DialogueProcessor, SpeechSynthesisProcessor
from voice.tts import PiperSynthesizer
from voice.vad import SileroModel, SmartTurnModel

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
            asr=WhisperTranscriber(settings.asr_model, threads=settings.asr_threads,
                                   beam_size=settings.asr_beam_size, language=settings.asr_language,
                                   min_window_s=settings.asr_window_s,
                                   vocabulary=settings.asr_vocabulary),
            tts=PiperSynthesizer(settings.tts_voice, length_scale=settings.tts_length_scale),
            vad=SileroModel(),
            turn=SmartTurnModel() if settings.turn_model else None,
        )
        log.info("speech models ready in %.1f s", time.perf_counter() - started)
        return models


class ConversationEngine:
    """Shared by all calls of the process; holds models, knowledge and the call store."""

    def __init__(self, settings: Settings, *, models: SpeechModels, store: CallStore) -> None:
        from kb import DEMO_KB_DIR

        self.settings = settings
        self.models = models
        self.store = store
        self.knowledge = KnowledgeBase.from_directory(settings.kb_dir or DEMO_KB_DIR)
        self.answerer = GroundedAnswerer(self.knowledge)
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
            barge_in_min_speech_ms=settings.barge_in_min_speech_ms,
            backchannel_max_ms=settings.backchannel_max_ms,
            barge_in_check_ms=settings.barge_in_check_ms,
            max_turn_ms=int(settings.max_turn_seconds * 1000),
            backchannels=tuple(settings.backchannels),
        )

    def phrases(self) -> list[str]:
        """What the assistant is likely to say: the greeting, the router's fixed replies and
        every sentence of the knowledge base (answers are extractive)."""
        from kb.answers import DONT_KNOW, split_sentences
        from nlu import router as fixed

        texts = [self.settings.greeting, DONT_KNOW, fixed.DIDNT_CATCH, fixed.TO_AGENT,
                 fixed.ANYTHING_ELSE, fixed.WHAT_ELSE, fixed.HOW_CAN_I_HELP, fixed.KEYPAD_UNUSED,
                 Router(self.answerer, company=self.settings.company_name).route("goodbye").text]
        for passage in self.knowledge.passages:
            texts.extend(split_sentences(passage.text))
        return texts

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

    def build_call(self, *, transport: BaseTransport, session: CallSession,
                   audio_out_rate: int) -> PipelineTask:
        """The call's pipeline around the bridge's transport, ready to ``run``."""
        pipeline = Pipeline([
            transport.input(),
            CallerTurnProcessor(session=session, vad=self.models.vad, turn_model=self.models.turn,
                                asr=self.models.asr, executor=self.executor, params=self.params),
            DialogueProcessor(session=session, greeting=self.settings.greeting,
                              router=Router(self.answerer, company=self.settings.company_name)),
            SpeechSynthesisProcessor(session=session, synthesizer=self.models.tts,
                                     executor=self.executor),
            transport.output(),
        ])
        return PipelineTask(
            pipeline,
            params=PipelineParams(audio_in_sample_rate=16_000, audio_out_sample_rate=audio_out_rate),
            enable_rtvi=False,
            idle_timeout_secs=None,
        )

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


async def warm_up(models: SpeechModels, executor: ThreadPoolExecutor) -> None:
    """Run each model once so the first caller does not pay for lazy initialisation."""
    import numpy as np

    loop = asyncio.get_running_loop()
    silence = np.zeros(16_000, dtype=np.float32)
    await loop.run_in_executor(executor, models.asr.transcribe, silence)
    if models.turn is not None:
        await loop.run_in_executor(executor, models.turn.completion_probability, silence)
