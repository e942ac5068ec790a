"""nlu.flows: every path of every flow, on a fresh demo SQLite backend per test."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest

from kb.backend import (
    DEMO_TODAY,
    BackendUnavailableError,
    Membership,
    Order,
    SqliteBackend,
)
from nlu.flows import (
    DONE,
    ESCALATED,
    FLOWS,
    BillingDisputeFlow,
    Flow,
    FlowContext,
    FlowDefinitionError,
    FlowFinishedError,
    FlowInput,
    FlowOutput,
    MembershipCancelFlow,
    MembershipPauseFlow,
    Move,
    OrderStatusFlow,
    ReturnEligibilityFlow,
    decide_return,
)
from nlu.flows.membership_pause import months_in

pytestmark = pytest.mark.unit

JAMIE_PHONE, SAM_PHONE = "+15550100", "+15550101"
JAMIE, SAM = "CUST-1", "CUST-2"


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[SqliteBackend]:
    with SqliteBackend(tmp_path / "backend.sqlite3") as backend:
        yield backend


Context = Callable[..., FlowContext]


@pytest.fixture
def context(backend: SqliteBackend) -> Context:
    def make(phone: str | None = JAMIE_PHONE, *, today: date = DEMO_TODAY) -> FlowContext:
        return FlowContext(backend, call_id="CA-test", caller_phone=phone, today=today)
    return make


def said(text: str = "", **slots: Any) -> FlowInput:
    return FlowInput(text, **slots)


YES, NO = said("yes", yes_no=True), said("no", yes_no=False)


def run(flow: Flow, *turns: FlowInput) -> list[FlowOutput]:
    """Step ``flow`` through ``turns``; every reply must be speakable and consistent."""
    outputs = []
    for turn in turns:
        out = flow.step(turn)
        assert out.say and not re.search(r"[*#`_\[\]<>]|https?:", out.say), out.say
        assert out.done == flow.done and (out.escalate is None or out.done)
        assert out.facts["flow"] == flow.name
        outputs.append(out)
    return outputs


# --- the state machine ----------------------------------------------------------------------------


@pytest.mark.parametrize("flow", FLOWS.values(), ids=FLOWS.keys())
def test_every_state_in_a_flow_table_has_a_handler(flow: type[Flow]) -> None:
    states = {state for state, _ in flow.transitions} | set(flow.transitions.values())
    assert flow.initial in states
    for state in states - {DONE, ESCALATED}:
        assert callable(getattr(flow, f"on_{state}", None)), f"{flow.name}: no on_{state}"


def test_an_event_missing_from_the_table_is_a_definition_error(context: Context) -> None:
    class Broken(Flow):
        name = "broken"
        transitions: ClassVar[dict[tuple[str, str], str]] = {("start", "fine"): DONE}

        def on_start(self, turn: FlowInput) -> Move:
            return Move("surprise", "Hm.")

    with pytest.raises(FlowDefinitionError, match="surprise"):
        Broken(context()).step(said("hi"))


def test_a_move_that_escalates_must_lead_to_the_escalated_state(context: Context) -> None:
    class Broken(Flow):
        name = "broken"
        transitions: ClassVar[dict[tuple[str, str], str]] = {("start", "over"): DONE}

        def on_start(self, turn: FlowInput) -> Move:
            return Move("over", "Bye.", escalate="why")

    with pytest.raises(FlowDefinitionError):
        Broken(context()).step(said("hi"))


def test_a_finished_flow_refuses_more_turns(context: Context) -> None:
    flow = OrderStatusFlow(context())
    run(flow, said(order_number="ORD-1002"))
    with pytest.raises(FlowFinishedError):
        flow.step(said("and another thing"))


def test_an_affirm_or_deny_intent_answers_a_yes_no_question() -> None:
    assert said("sure", intent="affirm").answer is True
    assert said("nah", intent="deny").answer is False
    assert said("no", yes_no=False, intent="affirm").answer is False
    assert said("what").answer is None


@pytest.mark.parametrize("flow", [OrderStatusFlow, MembershipCancelFlow, MembershipPauseFlow])
def test_asking_for_an_agent_hands_over_in_any_flow(context: Context, flow: type[Flow]) -> None:
    first, second = run(flow(context()), said("hello"), said("get me a person", intent="agent"))
    assert not first.done
    assert second.done and second.escalate == "caller asked for an agent"


# --- order status -----------------------------------------------------------------------------


def test_order_status_explains_the_delay_and_the_new_date(context: Context) -> None:
    [out] = run(OrderStatusFlow(context()), said("where is order 1001", order_number="ORD-1001"))
    assert out.done and out.escalate is None
    assert "delayed by a regional logistics issue in Ohio" in out.say
    assert "now scheduled for May 8 by 3 PM" in out.say
    assert out.facts["order_id"] == "ORD-1001" and out.facts["order_status"] == "delayed"


def test_order_status_asks_for_the_number_when_it_is_missing(context: Context) -> None:
    ask, answer = run(OrderStatusFlow(context()), said("where is my order"),
                      said("1002", order_number="1002"))
    assert not ask.done and ask.needs == "order_number" and "order number" in ask.say
    assert answer.done and "was delivered on April 28" in answer.say


@pytest.mark.parametrize(("order_id", "words"), [
    ("ORD-1002", ["laptop stand", "delivered on April 28"]),
    ("ORD-1003", ["being processed", "ships within 2 business days"]),
    ("ORD-1004", ["gift card", "delivered by email", "activated"]),
])
def test_order_status_says_where_each_demo_order_is(context: Context, order_id: str,
                                                    words: list[str]) -> None:
    [out] = run(OrderStatusFlow(context()), said(order_number=order_id))
    assert all(word in out.say for word in words), out.say


def test_order_status_of_a_shipped_order_gives_the_expected_day(
    context: Context, backend: SqliteBackend
) -> None:
    backend.add_order(Order("ORD-2001", SAM, "USB hub", "electronics", "shipped",
                            ordered_on=date(2026, 5, 4), expected_on=date(2026, 5, 7)))
    [out] = run(OrderStatusFlow(context()), said(order_number="ORD-2001"))
    assert out.say == "Order 2001, the USB hub, has shipped and is expected on May 7."


def test_order_status_of_a_delay_without_a_new_date_says_so(
    context: Context, backend: SqliteBackend
) -> None:
    backend.add_order(Order("ORD-2002", SAM, "monitor", "electronics", "delayed",
                            ordered_on=date(2026, 5, 1), status_detail="delayed at the warehouse"))
    [out] = run(OrderStatusFlow(context()), said(order_number="ORD-2002"))
    assert "delayed at the warehouse" in out.say and "don't have a new delivery date" in out.say


def test_order_status_works_for_a_caller_the_caller_id_does_not_know(context: Context) -> None:
    [out] = run(OrderStatusFlow(context(None)), said(order_number="ORD-1001"))
    assert out.done and "May 8" in out.say


def test_order_status_reads_back_an_unknown_order_and_asks_again(context: Context) -> None:
    unknown, found = run(OrderStatusFlow(context()), said(order_number="ORD-1099"),
                         said(order_number="ORD-1001"))
    assert "couldn't find order 1099" in unknown.say and unknown.needs == "order_number"
    assert found.done and "Ohio" in found.say
    assert found.facts["orders_not_found"] == ["ORD-1099"]


def test_order_status_escalates_after_two_unknown_orders(context: Context) -> None:
    _, out = run(OrderStatusFlow(context()), said(order_number="ORD-1099"),
                 said(order_number="1098"))
    assert out.done and out.escalate == "order ORD-1098 not found"


def test_order_status_escalates_when_no_number_comes_twice(context: Context) -> None:
    outs = run(OrderStatusFlow(context()), said("my order"), said("um"), said("I don't know"))
    assert [o.done for o in outs] == [False, False, True]
    assert outs[1].needs == "order_number" and "keypad" in outs[1].say
    assert outs[2].escalate == "caller did not give an order number"


class DownBackend(SqliteBackend):
    """The demo backend, but every lookup of an order or membership times out."""

    def order(self, order_id: str) -> Order | None:
        raise BackendUnavailableError("timed out")

    def membership(self, customer_id: str) -> Membership | None:
        raise BackendUnavailableError("timed out")


def test_an_unavailable_backend_hands_the_call_to_an_agent(tmp_path: Path) -> None:
    with DownBackend(tmp_path / "down.sqlite3") as backend:
        flow = OrderStatusFlow(FlowContext(backend, "CA-1", today=DEMO_TODAY))
        [out] = run(flow, said(order_number="ORD-1001"))
    assert out.done and out.escalate is not None and "unavailable" in out.escalate
    assert "can't reach our account system" in out.say


# --- return eligibility ------------------------------------------------------------------------

DELIVERED = date(2026, 3, 1)


def delivered(item_type: str, *, activated: bool = False) -> Order:
    return Order("ORD-3000", SAM, "thing", item_type, "delivered",  # type: ignore[arg-type]
                 ordered_on=DELIVERED - timedelta(days=3), delivered_on=DELIVERED,
                 activated=activated)


@pytest.mark.parametrize(("item_type", "plus", "days"), [
    ("electronics", False, 30), ("electronics", True, 60),
    ("limited_edition", False, 14), ("limited_edition", True, 30),
    ("digital", False, 30),  # not activated yet: the usual window
])
def test_return_window_ends_exactly_on_its_last_day(item_type: str, plus: bool, days: int) -> None:
    order = delivered(item_type)
    last_day = DELIVERED + timedelta(days=days)
    on_last_day = decide_return(order, plus=plus, today=last_day)
    assert on_last_day.eligible and on_last_day.window_days == days
    assert on_last_day.last_day == last_day
    day_after = decide_return(order, plus=plus, today=last_day + timedelta(days=1))
    assert (day_after.eligible, day_after.reason) == (False, "window_closed")


@pytest.mark.parametrize("plus", [False, True])
def test_an_activated_digital_product_is_never_refundable(plus: bool) -> None:
    decision = decide_return(delivered("digital", activated=True), plus=plus, today=DELIVERED)
    assert (decision.eligible, decision.reason) == (False, "digital_activated")
    assert decision.last_day is None


def test_return_of_the_laptop_stand_is_open_until_may_28(context: Context) -> None:
    [out] = run(ReturnEligibilityFlow(context()), said(order_number="ORD-1002"))
    assert out.say.startswith("Yes,") and "30 days" in out.say and "May 28" in out.say
    assert out.facts | {"returnable": True, "last_return_day": "2026-05-28",
                        "plus_member": False} == out.facts


def test_return_on_the_last_day_says_today_is_the_last_day(context: Context) -> None:
    [out] = run(ReturnEligibilityFlow(context(today=date(2026, 5, 28))), said(order_number="1002"))
    assert "today is the last day" in out.say and out.facts["returnable"] is True


def test_return_the_day_after_the_window_is_refused(context: Context) -> None:
    [out] = run(ReturnEligibilityFlow(context(today=date(2026, 5, 29))), said(order_number="1002"))
    assert "can no longer be returned" in out.say and "the last day was May 28" in out.say
    assert out.facts["returnable"] is False


def test_return_of_an_activated_gift_card_is_refused(context: Context) -> None:
    [out] = run(ReturnEligibilityFlow(context()), said(order_number="ORD-1004"))
    assert "can't be refunded" in out.say and "activated" in out.say
    assert out.facts["return_reason"] == "digital_activated"


def test_return_of_an_undelivered_limited_edition_item_for_a_plus_member(context: Context) -> None:
    [out] = run(ReturnEligibilityFlow(context()), said(order_number="ORD-1003"))
    assert "hasn't been delivered yet" in out.say
    assert ("Limited-edition items can be returned within 30 days of delivery "
            "for Brightline Plus members") in out.say
    assert out.facts["return_window_days"] == 30 and out.facts["plus_member"] is True


def test_a_plus_members_delivered_limited_edition_item_gets_30_days(
    context: Context, backend: SqliteBackend
) -> None:
    backend.add_order(Order("ORD-2003", JAMIE, "limited-edition speaker", "limited_edition",
                            "delivered", ordered_on=date(2026, 4, 1),
                            delivered_on=date(2026, 4, 10)))
    ask = said(order_number="2003")
    [inside] = run(ReturnEligibilityFlow(context(today=date(2026, 5, 9))), ask)
    [outside] = run(ReturnEligibilityFlow(context(today=date(2026, 5, 11))), ask)
    assert inside.facts["returnable"] is True and "May 10" in inside.say
    assert outside.facts["returnable"] is False


def test_a_paused_plus_membership_does_not_extend_the_return_window(
    context: Context, backend: SqliteBackend
) -> None:
    backend.add_order(Order("ORD-2004", JAMIE, "keyboard", "electronics", "delivered",
                            ordered_on=date(2026, 3, 20), delivered_on=date(2026, 3, 25)))
    [plus] = run(ReturnEligibilityFlow(context()), said(order_number="2004"))
    assert plus.facts["returnable"] is True and plus.facts["return_window_days"] == 60
    backend.pause_membership(JAMIE, 1, call_id="CA-0")
    [paused] = run(ReturnEligibilityFlow(context()), said(order_number="2004"))
    assert paused.facts["returnable"] is False and paused.facts["return_window_days"] == 30


def test_a_cancelled_membership_still_counts_until_it_ends(backend: SqliteBackend) -> None:
    cancelled = backend.cancel_membership(JAMIE, call_id="CA-0")
    assert cancelled.benefits_on(date(2026, 5, 31)) and not cancelled.benefits_on(date(2026, 6, 1))


def test_return_eligibility_asks_for_the_order_number(context: Context) -> None:
    ask, answer = run(ReturnEligibilityFlow(context()), said("can I return my stuff"),
                      said(order_number="ORD-1002"))
    assert ask.needs == "order_number" and answer.done


# --- membership cancel ---------------------------------------------------------------------------

CANCEL = said("I want to cancel my membership", intent="membership_cancel")
POSTCODE = said("43004", postcode="43004")


def test_cancel_happy_path_declines_the_pause_then_confirms(
    context: Context, backend: SqliteBackend
) -> None:
    ask, offer, confirm, done = run(MembershipCancelFlow(context()), CANCEL, POSTCODE, NO, YES)
    assert ask.needs == "postcode" and "postcode" in ask.say
    assert offer.needs == "yes_no" and offer.say.startswith("Thank you, Jamie.")
    assert "2 orders on the way: order 1001 and order 1003" in offer.say
    assert "pause Brightline Plus for up to 3 months" in offer.say
    assert "stays active until May 31" in confirm.say and confirm.needs == "yes_no"
    assert done.done and done.escalate is None
    assert "cancelled" in done.say
    assert "until May 31, the end of your current billing period" in done.say
    assert done.facts | {"outcome": "cancelled", "ends_on": "2026-05-31", "verified": True,
                         "pause_offer": "declined",
                         "pending_orders": ["ORD-1001", "ORD-1003"]} == done.facts
    assert backend.membership(JAMIE).status == "cancelled"  # type: ignore[union-attr]
    log = backend.audit_log("CA-test")
    assert [e.action for e in log] == ["identity.verified", "membership.cancelled"]
    assert log[1].details["ends_on"] == "2026-05-31"


def test_cancel_accepts_a_postcode_said_digit_by_digit(context: Context) -> None:
    _, offer = run(MembershipCancelFlow(context()), CANCEL, said("4 3 0 0 4", postcode="4 3 0 0 4"))
    assert offer.needs == "yes_no"


def test_cancel_with_one_wrong_postcode_asks_again(
    context: Context, backend: SqliteBackend
) -> None:
    _, wrong, offer = run(MembershipCancelFlow(context()), CANCEL, said(postcode="12345"), POSTCODE)
    assert "doesn't match" in wrong.say and wrong.needs == "postcode" and not wrong.done
    assert offer.needs == "yes_no"
    actions = [e.action for e in backend.audit_log("CA-test")]
    assert actions == ["identity.postcode_mismatch", "identity.verified"]
    assert all("12345" not in str(e.details) for e in backend.audit_log())


def test_cancel_with_two_wrong_postcodes_escalates_and_changes_nothing(
    context: Context, backend: SqliteBackend
) -> None:
    *_, out = run(MembershipCancelFlow(context()), CANCEL, said(postcode="12345"),
                  said(postcode="54321"))
    assert out.done and out.escalate == "postcode did not match the account twice"
    assert out.facts["verified"] is False and out.facts["outcome"] == "escalated"
    assert backend.membership(JAMIE).status == "active"  # type: ignore[union-attr]


def test_cancel_without_a_postcode_twice_escalates(context: Context) -> None:
    *_, again, out = run(MembershipCancelFlow(context()), CANCEL, said("why"), said("no"))
    assert again.needs == "postcode"
    assert out.escalate == "caller did not give the postcode on file"


def test_cancel_declined_at_confirmation_keeps_the_membership(
    context: Context, backend: SqliteBackend
) -> None:
    *_, out = run(MembershipCancelFlow(context()), CANCEL, POSTCODE, NO, NO)
    assert out.done and "won't cancel" in out.say and out.facts["outcome"] == "kept"
    assert backend.membership(JAMIE).status == "active"  # type: ignore[union-attr]
    assert [e.action for e in backend.audit_log()] == ["identity.verified"]


def test_cancel_unclear_confirmation_asks_again_then_escalates(context: Context) -> None:
    *_, again, out = run(MembershipCancelFlow(context()), CANCEL, POSTCODE, NO,
                         said("hmm"), said("what"))
    assert "didn't get that" in again.say and again.needs == "yes_no"
    assert out.escalate == "caller did not confirm the cancellation"


def test_only_a_said_yes_is_consent_to_a_change_and_a_no_of_any_kind_declines() -> None:
    assert said("yes", yes_no=True).consent is True
    assert said("go on", intent="affirm").consent is None  # the classifier's affirm alone
    assert said("i'd rather not", intent="deny").consent is False
    assert said("no", yes_no=False, intent="affirm").consent is False
    assert said("go on", intent="affirm").answer is True  # elsewhere an affirm is a yes


def test_cancel_is_not_done_on_an_affirm_the_caller_never_said(
    context: Context, backend: SqliteBackend
) -> None:
    *_, again = run(MembershipCancelFlow(context()), CANCEL, POSTCODE, NO,
                    said("hmm let me think", intent="affirm"))
    assert "didn't get that" in again.say and again.needs == "yes_no" and not again.done
    assert backend.membership(JAMIE).status == "active"  # type: ignore[union-attr]


def test_pause_is_not_done_on_an_affirm_the_caller_never_said(
    context: Context, backend: SqliteBackend
) -> None:
    *_, again, done = run(MembershipPauseFlow(context()), PAUSE, POSTCODE,
                          said("two months", months=2), said("go on", intent="affirm"), YES)
    assert again.needs == "yes_no" and not again.done
    assert done.facts["outcome"] == "paused"


def test_cancel_intent_at_the_offer_declines_the_pause(context: Context) -> None:
    *_, confirm = run(MembershipCancelFlow(context()), CANCEL, POSTCODE,
                      said("just cancel it", intent="membership_cancel"))
    assert "Shall I cancel it?" in confirm.say


def test_cancel_caller_takes_the_pause_instead(context: Context, backend: SqliteBackend) -> None:
    *_, months, confirm, done = run(MembershipCancelFlow(context()), CANCEL, POSTCODE, YES,
                                    said("two", months=2), YES)
    assert months.needs == "months" and "How many months" in months.say
    assert "2 months" in confirm.say and confirm.needs == "yes_no"
    assert done.done and "paused until July 6" in done.say
    assert done.facts["outcome"] == "paused" and done.facts["pause_offer"] == "accepted"
    assert done.facts["flow"] == "membership_cancel"
    assert backend.membership(JAMIE).status == "paused"  # type: ignore[union-attr]
    actions = [e.action for e in backend.audit_log("CA-test")]
    assert actions == ["identity.verified", "membership.paused"]


def test_cancel_pause_with_its_length_in_the_same_breath(context: Context) -> None:
    *_, confirm = run(MembershipCancelFlow(context()), CANCEL, POSTCODE,
                      said("yes, pause it for three months", yes_no=True))
    assert "3 months" in confirm.say and confirm.needs == "yes_no"


def test_cancel_caller_changes_their_mind_back_to_cancelling(context: Context) -> None:
    *_, confirm, done = run(MembershipCancelFlow(context()), CANCEL, POSTCODE, YES,
                            said("no, just cancel it", intent="membership_cancel"), YES)
    assert "Shall I cancel it?" in confirm.say
    assert done.facts["outcome"] == "cancelled"


def test_cancel_by_a_caller_the_caller_id_does_not_know_goes_to_an_agent(context: Context) -> None:
    [out] = run(MembershipCancelFlow(context("+15559999")), CANCEL)
    assert out.done and out.escalate is not None and "not identified" in out.escalate
    assert "connect you with an agent" in out.say


def test_cancel_for_a_customer_without_plus(context: Context) -> None:
    *_, out = run(MembershipCancelFlow(context(SAM_PHONE)), CANCEL, said(postcode="94110"))
    assert out.done and "don't see a Brightline Plus membership" in out.say
    assert out.facts["outcome"] == "no_membership"


def test_cancel_an_already_cancelled_membership(context: Context, backend: SqliteBackend) -> None:
    backend.cancel_membership(JAMIE, call_id="CA-earlier")
    *_, out = run(MembershipCancelFlow(context()), CANCEL, POSTCODE)
    assert out.done and "already cancelled" in out.say and "May 31" in out.say


def test_cancel_a_paused_membership_skips_the_pause_offer_and_ends_today(
    context: Context, backend: SqliteBackend
) -> None:
    backend.pause_membership(JAMIE, 1, call_id="CA-earlier")
    *_, confirm, done = run(MembershipCancelFlow(context()), CANCEL, POSTCODE, YES)
    assert "paused until June 6" in confirm.say and "ends today" in confirm.say
    assert done.facts["ends_on"] == DEMO_TODAY.isoformat() and "It ends today." in done.say


def test_a_caller_verified_once_is_not_asked_again_in_the_same_call(context: Context) -> None:
    call = context()
    run(MembershipPauseFlow(call), said("pause it"), POSTCODE, said("one", months=1), NO)
    [offer] = run(MembershipCancelFlow(call), CANCEL)
    assert offer.needs == "yes_no" and "postcode" not in offer.say


def test_cancel_backend_failure_escalates(tmp_path: Path) -> None:
    with DownBackend(tmp_path / "down.sqlite3") as backend:
        context = FlowContext(backend, "CA-1", caller_phone=JAMIE_PHONE, today=DEMO_TODAY)
        _, out = run(MembershipCancelFlow(context), CANCEL, POSTCODE)
    assert out.done and out.escalate is not None and out.facts["outcome"] == "escalated"


def test_cancel_refused_by_the_backend_escalates(context: Context, backend: SqliteBackend) -> None:
    flow = MembershipCancelFlow(context())
    run(flow, CANCEL, POSTCODE, NO)
    backend.cancel_membership(JAMIE, call_id="CA-other-line")  # cancelled meanwhile
    [out] = run(flow, YES)
    assert out.escalate is not None and out.escalate.startswith("backend error")
    assert "something went wrong" in out.say


# --- membership pause -----------------------------------------------------------------------------

PAUSE = said("can I pause my membership", intent="membership_pause")


def test_pause_happy_path(context: Context, backend: SqliteBackend) -> None:
    ask, months, confirm, done = run(MembershipPauseFlow(context()), PAUSE, POSTCODE,
                                     said("two months please", months=2), YES)
    assert ask.needs == "postcode" and months.needs == "months"
    assert "pause Brightline Plus for 2 months, starting today" in confirm.say
    assert done.done and done.say == "Done. Your Brightline Plus membership is paused until July 6."
    expected = {"outcome": "paused", "paused_until": "2026-07-06", "pause_months": 2}
    assert done.facts | expected == done.facts
    entry = backend.audit_log("CA-test")[-1]
    assert (entry.action, entry.details["months"]) == ("membership.paused", 2)


def test_pause_length_in_the_first_sentence_is_not_asked_again(context: Context) -> None:
    _, confirm = run(MembershipPauseFlow(context()), said("pause my plus for a month"), POSTCODE)
    assert "for 1 month," in confirm.say


def test_pause_of_more_than_three_months_is_explained_and_asked_again(context: Context) -> None:
    *_, too_long, confirm = run(MembershipPauseFlow(context()), PAUSE, POSTCODE,
                                said(months=6), said("three"))
    assert "up to 3 months" in too_long.say and too_long.needs == "months"
    assert "3 months" in confirm.say


def test_pause_longer_than_three_months_twice_escalates(context: Context) -> None:
    *_, out = run(MembershipPauseFlow(context()), PAUSE, POSTCODE, said(months=6), said(months=4))
    assert out.escalate == "caller wanted a pause of 4 months"


def test_pause_made_too_long_at_confirmation_asks_for_the_length_again(context: Context) -> None:
    *_, ask, confirm = run(MembershipPauseFlow(context()), PAUSE, POSTCODE, said(months=1),
                           said("make it six months"), said("two"))
    assert "up to 3 months" in ask.say and ask.needs == "months"
    assert "2 months" in confirm.say


def test_pause_for_a_customer_without_plus(context: Context) -> None:
    *_, out = run(MembershipPauseFlow(context(SAM_PHONE)), PAUSE, said(postcode="94110"))
    assert out.done and out.facts["outcome"] == "no_membership"


def test_pause_without_a_length_twice_escalates(context: Context) -> None:
    *_, again, out = run(MembershipPauseFlow(context()), PAUSE, POSTCODE,
                         said("hmm"), said("dunno"))
    assert again.needs == "months"
    assert out.escalate == "caller did not say how long to pause"


def test_pause_declined_at_confirmation_changes_nothing(
    context: Context, backend: SqliteBackend
) -> None:
    *_, out = run(MembershipPauseFlow(context()), PAUSE, POSTCODE, said(months=1), NO)
    assert out.done and out.facts["outcome"] == "kept"
    assert backend.membership(JAMIE).status == "active"  # type: ignore[union-attr]


def test_pause_length_changed_at_confirmation_is_confirmed_again(context: Context) -> None:
    *_, first, second, done = run(MembershipPauseFlow(context()), PAUSE, POSTCODE, said(months=1),
                                  said("actually make it two months"), YES)
    assert "1 month," in first.say and "2 months" in second.say
    assert done.facts["pause_months"] == 2


def test_pause_of_an_already_paused_membership(context: Context, backend: SqliteBackend) -> None:
    backend.pause_membership(JAMIE, 2, call_id="CA-earlier")
    *_, out = run(MembershipPauseFlow(context()), PAUSE, POSTCODE)
    assert out.done and "already paused until July 6" in out.say


def test_pause_of_a_cancelled_membership(context: Context, backend: SqliteBackend) -> None:
    backend.cancel_membership(JAMIE, call_id="CA-earlier")
    *_, out = run(MembershipPauseFlow(context()), PAUSE, POSTCODE)
    assert out.done and "can't be paused" in out.say


def test_pause_by_an_unknown_or_withheld_number_goes_to_an_agent(context: Context) -> None:
    [out] = run(MembershipPauseFlow(context(None)), PAUSE)
    assert out.done and out.escalate is not None


def test_pause_with_two_wrong_postcodes_escalates(context: Context) -> None:
    *_, out = run(MembershipPauseFlow(context()), PAUSE, said(postcode="94110"),
                  said(postcode="00000"))
    assert out.escalate == "postcode did not match the account twice"


@pytest.mark.parametrize(("text", "bare", "months"), [
    ("for two months", False, 2), ("a month", False, 1), ("3 months please", False, 3),
    ("two", True, 2), ("two", False, None), ("no idea", True, None),
])
def test_months_are_read_from_the_words_when_the_slot_is_missing(
    text: str, bare: bool, months: int | None
) -> None:
    assert months_in(text, bare=bare) == months


# --- billing dispute -----------------------------------------------------------------------------


def test_billing_dispute_always_goes_to_a_human(context: Context) -> None:
    [out] = run(BillingDisputeFlow(context(None)),
                said("I was charged twice for order 1002", intent="billing_dispute",
                     order_number="1002"))
    assert out.done and out.escalate is not None and "billing dispute" in out.escalate
    assert "agent" in out.say and out.facts["order_id"] == "ORD-1002"
