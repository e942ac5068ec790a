"""The lifecycle of one SIP transfer, sans I/O: events in, the next state and actions out.

Two ways to hand a caller to a human, each a path through the same table (h11's ``_state.py``
style: one dict, every legal ``(state, event)`` pair in it, anything else an error):

Blind, by REFER (RFC 3515): we ask the caller's phone to call the agent itself::

    idle ─refer_sent─▶ referring ─refer_accepted (202)─▶ accepted ─notify_trying─▶ progressing
                           │                               │  └──notify_succeeded──┐     │
                           └─refer_rejected, timed_out─▶ failed ◀─notify_failed,───┼─────┤
                                                                   timed_out       ▼     │
                                                  succeeded (we BYE the caller) ◀──┴─────┘

A caller hanging up before the 202 fails the transfer; after it, the phone has taken the call
over (RFC 5589 lets the transferee end the old dialog itself): that counts as succeeded.

Warm, as a back-to-back user agent: we call the agent, brief them, then relay the audio::

    idle ─invite_sent─▶ calling_agent ─agent_answered (2xx, ACK)─▶ agent_answered
                          │    └─agent_refused (486, 603, ...), timed_out (CANCEL)─▶ failed
                          └─caller_hung_up (CANCEL)─▶ ended
    agent_answered ─briefing_started─▶ briefing ─briefing_done─▶ bridged
    agent_answered ─bridge_started (no briefing)───────────────▶ bridged
    briefing ─caller_hung_up (BYE agent)─▶ ended     briefing ─agent_hung_up─▶ failed
    bridged ─caller_hung_up (BYE agent) / agent_hung_up (BYE caller) / hung_up (BYE both)─▶ ended

A 2xx that arrives after we gave up (CANCEL crossing the agent's answer) is acknowledged and
then ended with a BYE, from ``failed`` or ``ended``: the agent's phone never stays off-hook.

``TransferMachine.handle(event)`` returns the actions for the network layer to carry out
(``telephony.sip.control`` does); the machine itself never touches a socket. An event the
current state does not allow raises ``SipStateError`` (a programming error, as in the dialog
machine). The helpers at the bottom turn SIP responses and NOTIFY progress into events.
"""

from __future__ import annotations

from enum import Enum

from telephony.sip.errors import SipStateError
from telephony.sip.refer import TransferProgress

__all__ = ["Action", "TransferEvent", "TransferMachine", "TransferMode", "TransferState",
           "agent_response_event", "progress_event", "refer_response_event"]


class TransferMode(Enum):
    REFER = "refer"  # blind: the caller's phone calls the agent
    BRIDGE = "bridge"  # warm: we call the agent and relay the audio (B2BUA)


class TransferState(Enum):
    IDLE = "idle"
    # blind (REFER)
    REFERRING = "referring"
    ACCEPTED = "accepted"
    PROGRESSING = "progressing"
    SUCCEEDED = "succeeded"
    # warm (B2BUA)
    CALLING_AGENT = "calling_agent"
    AGENT_ANSWERED = "agent_answered"
    BRIEFING = "briefing"
    BRIDGED = "bridged"
    ENDED = "ended"
    # both
    FAILED = "failed"


class TransferEvent(Enum):
    REFER_SENT = "refer_sent"
    REFER_ACCEPTED = "refer_accepted"  # a 2xx (202) to the REFER
    REFER_REJECTED = "refer_rejected"  # a 3xx-6xx to the REFER
    NOTIFY_TRYING = "notify_trying"  # sipfrag 1xx
    NOTIFY_SUCCEEDED = "notify_succeeded"  # sipfrag 2xx
    NOTIFY_FAILED = "notify_failed"  # sipfrag 3xx-6xx, or the subscription ended without one
    INVITE_SENT = "invite_sent"
    AGENT_RINGING = "agent_ringing"  # a 1xx to our INVITE
    AGENT_ANSWERED = "agent_answered"  # a 2xx to our INVITE
    AGENT_REFUSED = "agent_refused"  # a 3xx-6xx to our INVITE (busy, declined, not found)
    BRIEFING_STARTED = "briefing_started"
    BRIEFING_DONE = "briefing_done"
    BRIDGE_STARTED = "bridge_started"  # straight to the bridge, no briefing
    CALLER_HUNG_UP = "caller_hung_up"  # BYE (or CANCEL) from the caller
    AGENT_HUNG_UP = "agent_hung_up"  # BYE from the agent
    HUNG_UP = "hung_up"  # we end the bridged call ourselves
    TIMED_OUT = "timed_out"  # no 2xx/NOTIFY in time


class Action(Enum):
    """What the network layer must do after a transition, in the order returned."""

    BYE_CALLER = "bye_caller"  # end our dialog with the caller
    ACK_AGENT = "ack_agent"  # ACK the agent's 2xx (the user agent's invite() does it)
    CANCEL_AGENT = "cancel_agent"  # CANCEL our pending INVITE to the agent
    BYE_AGENT = "bye_agent"  # end our dialog with the agent
    SPEAK_BRIEFING = "speak_briefing"  # play the handoff summary to the agent
    STOP_BRIEFING = "stop_briefing"
    START_BRIDGE = "start_bridge"  # relay caller ⇄ agent audio, transcribing both
    STOP_BRIDGE = "stop_bridge"


S, E, A = TransferState, TransferEvent, Action

_TRANSITIONS: dict[tuple[TransferState, TransferEvent], tuple[TransferState, tuple[Action, ...]]] = {
    # ---- blind: REFER (RFC 3515) ------------------------------------------------------------
    (S.IDLE, E.REFER_SENT): (S.REFERRING, ()),
    (S.REFERRING, E.REFER_ACCEPTED): (S.ACCEPTED, ()),
    (S.REFERRING, E.REFER_REJECTED): (S.FAILED, ()),
    (S.REFERRING, E.TIMED_OUT): (S.FAILED, ()),
    (S.REFERRING, E.CALLER_HUNG_UP): (S.FAILED, ()),
    # A NOTIFY may overtake the 202 (RFC 3515 §2.4.4: they travel independently).
    (S.REFERRING, E.NOTIFY_TRYING): (S.PROGRESSING, ()),
    (S.ACCEPTED, E.NOTIFY_TRYING): (S.PROGRESSING, ()),
    (S.ACCEPTED, E.NOTIFY_SUCCEEDED): (S.SUCCEEDED, (A.BYE_CALLER,)),
    (S.ACCEPTED, E.NOTIFY_FAILED): (S.FAILED, ()),
    (S.ACCEPTED, E.TIMED_OUT): (S.FAILED, ()),
    (S.ACCEPTED, E.CALLER_HUNG_UP): (S.SUCCEEDED, ()),
    (S.PROGRESSING, E.REFER_ACCEPTED): (S.PROGRESSING, ()),  # the late 202
    (S.PROGRESSING, E.NOTIFY_TRYING): (S.PROGRESSING, ()),
    (S.PROGRESSING, E.NOTIFY_SUCCEEDED): (S.SUCCEEDED, (A.BYE_CALLER,)),
    (S.PROGRESSING, E.NOTIFY_FAILED): (S.FAILED, ()),
    (S.PROGRESSING, E.TIMED_OUT): (S.FAILED, ()),
    (S.PROGRESSING, E.CALLER_HUNG_UP): (S.SUCCEEDED, ()),
    # ---- warm: back-to-back user agent ------------------------------------------------------
    (S.IDLE, E.INVITE_SENT): (S.CALLING_AGENT, ()),
    (S.CALLING_AGENT, E.AGENT_RINGING): (S.CALLING_AGENT, ()),
    (S.CALLING_AGENT, E.AGENT_ANSWERED): (S.AGENT_ANSWERED, (A.ACK_AGENT,)),
    (S.CALLING_AGENT, E.AGENT_REFUSED): (S.FAILED, ()),
    (S.CALLING_AGENT, E.TIMED_OUT): (S.FAILED, (A.CANCEL_AGENT,)),
    (S.CALLING_AGENT, E.CALLER_HUNG_UP): (S.ENDED, (A.CANCEL_AGENT,)),
    (S.AGENT_ANSWERED, E.BRIEFING_STARTED): (S.BRIEFING, (A.SPEAK_BRIEFING,)),
    (S.AGENT_ANSWERED, E.BRIDGE_STARTED): (S.BRIDGED, (A.START_BRIDGE,)),
    (S.AGENT_ANSWERED, E.CALLER_HUNG_UP): (S.ENDED, (A.BYE_AGENT,)),
    (S.AGENT_ANSWERED, E.AGENT_HUNG_UP): (S.FAILED, ()),
    (S.BRIEFING, E.BRIEFING_DONE): (S.BRIDGED, (A.START_BRIDGE,)),
    (S.BRIEFING, E.CALLER_HUNG_UP): (S.ENDED, (A.STOP_BRIEFING, A.BYE_AGENT)),
    (S.BRIEFING, E.AGENT_HUNG_UP): (S.FAILED, (A.STOP_BRIEFING,)),
    (S.BRIEFING, E.TIMED_OUT): (S.FAILED, (A.STOP_BRIEFING, A.BYE_AGENT)),
    (S.BRIDGED, E.CALLER_HUNG_UP): (S.ENDED, (A.STOP_BRIDGE, A.BYE_AGENT)),
    (S.BRIDGED, E.AGENT_HUNG_UP): (S.ENDED, (A.STOP_BRIDGE, A.BYE_CALLER)),
    (S.BRIDGED, E.HUNG_UP): (S.ENDED, (A.STOP_BRIDGE, A.BYE_CALLER, A.BYE_AGENT)),
    # the agent's 2xx crossing our CANCEL: take the call and end it at once
    (S.FAILED, E.AGENT_ANSWERED): (S.FAILED, (A.ACK_AGENT, A.BYE_AGENT)),
    (S.ENDED, E.AGENT_ANSWERED): (S.ENDED, (A.ACK_AGENT, A.BYE_AGENT)),
}

FINAL_STATES = frozenset({S.SUCCEEDED, S.FAILED, S.ENDED})


class TransferMachine:
    """One transfer's state; ``handle`` is the only way to change it."""

    def __init__(self) -> None:
        self.state = TransferState.IDLE
        self.mode: TransferMode | None = None
        self.history: list[tuple[TransferEvent, TransferState]] = []  # for logs and tests

    @property
    def done(self) -> bool:
        return self.state in FINAL_STATES

    def handle(self, event: TransferEvent) -> tuple[Action, ...]:
        """Apply ``event``; the actions to carry out. ``SipStateError`` when not allowed."""
        try:
            state, actions = _TRANSITIONS[(self.state, event)]
        except KeyError:
            raise SipStateError(f"transfer event {event.value} is not allowed in state "
                                f"{self.state.value}") from None
        if self.state is S.IDLE:
            self.mode = TransferMode.REFER if event is E.REFER_SENT else TransferMode.BRIDGE
        self.state = state
        self.history.append((event, state))
        return actions

    def allows(self, event: TransferEvent) -> bool:
        return (self.state, event) in _TRANSITIONS


# ------------------------------------------------------------------------------ SIP → events
def refer_response_event(status: int) -> TransferEvent:
    """The event for the final response to our REFER."""
    if status < 200:
        raise ValueError(f"{status} is not a final response")
    return E.REFER_ACCEPTED if status < 300 else E.REFER_REJECTED


def progress_event(progress: TransferProgress) -> TransferEvent:
    """The event for one NOTIFY of our REFER's implicit subscription (RFC 3515 §2.4.5).
    A subscription that ends without a final status is a failure: the outcome is unknown."""
    if progress.succeeded:
        return E.NOTIFY_SUCCEEDED
    if progress.status >= 300 or progress.subscription_ended:
        return E.NOTIFY_FAILED
    return E.NOTIFY_TRYING


def agent_response_event(status: int) -> TransferEvent:
    """The event for a response to our INVITE to the agent."""
    if status < 200:
        return E.AGENT_RINGING
    return E.AGENT_ANSWERED if status < 300 else E.AGENT_REFUSED
