"""telephony.sip.transfer: the transfer lifecycle table, every transition and the refusals."""

from __future__ import annotations

import pytest

from telephony.sip.errors import SipStateError
from telephony.sip.refer import TransferProgress
from telephony.sip.transfer import (
    _TRANSITIONS,
    Action,
    TransferEvent,
    TransferMachine,
    TransferMode,
    TransferState,
    agent_response_event,
    progress_event,
    refer_response_event,
)

pytestmark = pytest.mark.unit

S, E, A = TransferState, TransferEvent, Action


def machine_in(state: TransferState) -> TransferMachine:
    machine = TransferMachine()
    machine.state = state  # the table is what is under test, not how each state is reached
    return machine


def run(*events: TransferEvent) -> tuple[TransferMachine, list[Action]]:
    machine, actions = TransferMachine(), []
    for event in events:
        actions.extend(machine.handle(event))
    return machine, actions


@pytest.mark.parametrize(("state", "event"), list(_TRANSITIONS),
                         ids=[f"{s.value}-{e.value}" for s, e in _TRANSITIONS])
def test_every_transition_in_the_table_moves_to_its_state_with_its_actions(state, event):
    machine = machine_in(state)
    expected_state, expected_actions = _TRANSITIONS[(state, event)]
    assert machine.allows(event)
    assert machine.handle(event) == expected_actions
    assert machine.state is expected_state
    assert machine.history == [(event, expected_state)]


ILLEGAL = [(s, e) for s in TransferState for e in TransferEvent if (s, e) not in _TRANSITIONS]


@pytest.mark.parametrize(("state", "event"), ILLEGAL,
                         ids=[f"{s.value}-{e.value}" for s, e in ILLEGAL])
def test_an_event_the_state_does_not_allow_raises_the_state_error(state, event):
    machine = machine_in(state)
    with pytest.raises(SipStateError, match=f"{event.value} is not allowed in state {state.value}"):
        machine.handle(event)
    assert machine.state is state and machine.history == []


def test_a_blind_transfer_succeeds_through_202_and_notify_100_then_200_with_a_bye_to_the_caller():
    machine, actions = run(E.REFER_SENT, E.REFER_ACCEPTED, E.NOTIFY_TRYING, E.NOTIFY_TRYING,
                           E.NOTIFY_SUCCEEDED)
    assert machine.mode is TransferMode.REFER and machine.state is S.SUCCEEDED and machine.done
    assert [state for _, state in machine.history] == [
        S.REFERRING, S.ACCEPTED, S.PROGRESSING, S.PROGRESSING, S.SUCCEEDED]
    assert actions == [A.BYE_CALLER]


def test_a_notify_that_overtakes_the_202_is_progress_and_the_late_202_changes_nothing():
    machine, actions = run(E.REFER_SENT, E.NOTIFY_TRYING, E.REFER_ACCEPTED, E.NOTIFY_SUCCEEDED)
    assert machine.state is S.SUCCEEDED and actions == [A.BYE_CALLER]


@pytest.mark.parametrize("events", [
    (E.REFER_SENT, E.REFER_REJECTED),
    (E.REFER_SENT, E.TIMED_OUT),
    (E.REFER_SENT, E.REFER_ACCEPTED, E.NOTIFY_FAILED),
    (E.REFER_SENT, E.REFER_ACCEPTED, E.NOTIFY_TRYING, E.NOTIFY_FAILED),
    (E.REFER_SENT, E.REFER_ACCEPTED, E.NOTIFY_TRYING, E.TIMED_OUT),
], ids=["rejected", "no-answer", "failing-sipfrag", "failing-after-trying", "no-final-notify"])
def test_a_blind_transfer_fails_without_hanging_up_the_caller(events):
    machine, actions = run(*events)
    assert machine.state is S.FAILED and actions == []


def test_a_caller_leaving_after_the_202_counts_as_transferred_but_before_it_as_failed():
    assert run(E.REFER_SENT, E.REFER_ACCEPTED, E.CALLER_HUNG_UP)[0].state is S.SUCCEEDED
    assert run(E.REFER_SENT, E.CALLER_HUNG_UP)[0].state is S.FAILED


def test_a_warm_transfer_calls_briefs_bridges_and_ends_with_a_bye_to_the_agent():
    machine, actions = run(E.INVITE_SENT, E.AGENT_RINGING, E.AGENT_ANSWERED, E.BRIEFING_STARTED,
                           E.BRIEFING_DONE, E.CALLER_HUNG_UP)
    assert machine.mode is TransferMode.BRIDGE and machine.state is S.ENDED
    assert actions == [A.ACK_AGENT, A.SPEAK_BRIEFING, A.START_BRIDGE, A.STOP_BRIDGE, A.BYE_AGENT]


def test_a_warm_transfer_without_briefing_bridges_when_the_agent_answers():
    machine, actions = run(E.INVITE_SENT, E.AGENT_ANSWERED, E.BRIDGE_STARTED)
    assert machine.state is S.BRIDGED and actions == [A.ACK_AGENT, A.START_BRIDGE]


def test_the_agent_hanging_up_a_bridged_call_hangs_up_the_caller_and_we_can_end_both():
    assert run(E.INVITE_SENT, E.AGENT_ANSWERED, E.BRIDGE_STARTED, E.AGENT_HUNG_UP)[1][-2:] == [
        A.STOP_BRIDGE, A.BYE_CALLER]
    assert run(E.INVITE_SENT, E.AGENT_ANSWERED, E.BRIDGE_STARTED, E.HUNG_UP)[1][-3:] == [
        A.STOP_BRIDGE, A.BYE_CALLER, A.BYE_AGENT]


def test_a_busy_agent_fails_and_an_unanswered_one_is_cancelled():
    machine, actions = run(E.INVITE_SENT, E.AGENT_RINGING, E.AGENT_REFUSED)
    assert machine.state is S.FAILED and actions == []
    machine, actions = run(E.INVITE_SENT, E.AGENT_RINGING, E.TIMED_OUT)
    assert machine.state is S.FAILED and actions == [A.CANCEL_AGENT]


def test_a_caller_hanging_up_while_the_agent_rings_or_is_briefed_ends_the_agent_leg():
    machine, actions = run(E.INVITE_SENT, E.CALLER_HUNG_UP)
    assert machine.state is S.ENDED and actions == [A.CANCEL_AGENT]
    machine, actions = run(E.INVITE_SENT, E.AGENT_ANSWERED, E.BRIEFING_STARTED, E.CALLER_HUNG_UP)
    assert machine.state is S.ENDED and actions[-2:] == [A.STOP_BRIEFING, A.BYE_AGENT]


def test_an_agent_answer_crossing_our_cancel_is_acknowledged_and_hung_up():
    machine, actions = run(E.INVITE_SENT, E.TIMED_OUT, E.AGENT_ANSWERED)
    assert machine.state is S.FAILED and actions == [A.CANCEL_AGENT, A.ACK_AGENT, A.BYE_AGENT]


def test_a_blind_and_a_warm_event_do_not_mix():
    machine, _ = run(E.REFER_SENT)
    with pytest.raises(SipStateError):
        machine.handle(E.AGENT_ANSWERED)
    machine, _ = run(E.INVITE_SENT)
    with pytest.raises(SipStateError):
        machine.handle(E.NOTIFY_SUCCEEDED)


@pytest.mark.parametrize(("status", "event"), [(202, E.REFER_ACCEPTED), (200, E.REFER_ACCEPTED),
                                               (403, E.REFER_REJECTED), (501, E.REFER_REJECTED)])
def test_refer_responses_map_to_accepted_or_rejected(status, event):
    assert refer_response_event(status) is event


def test_a_provisional_refer_response_is_not_an_event():
    with pytest.raises(ValueError, match="not a final response"):
        refer_response_event(100)


@pytest.mark.parametrize(("progress", "event"), [
    (TransferProgress(100, "Trying", False), E.NOTIFY_TRYING),
    (TransferProgress(180, "Ringing", False), E.NOTIFY_TRYING),
    (TransferProgress(200, "OK", True), E.NOTIFY_SUCCEEDED),
    (TransferProgress(486, "Busy Here", True), E.NOTIFY_FAILED),
    (TransferProgress(100, "Trying", True), E.NOTIFY_FAILED),  # ended without a final status
])
def test_notify_progress_maps_to_trying_succeeded_or_failed(progress, event):
    assert progress_event(progress) is event


@pytest.mark.parametrize(("status", "event"), [(180, E.AGENT_RINGING), (200, E.AGENT_ANSWERED),
                                               (486, E.AGENT_REFUSED), (603, E.AGENT_REFUSED)])
def test_invite_responses_map_to_ringing_answered_or_refused(status, event):
    assert agent_response_event(status) is event
