"""The demo company's customers, orders and memberships (Brightline, ``DEMO_COMPANY.md``).

The data is anchored on one day, :data:`DEMO_TODAY` (Wednesday 6 May 2026): ORD-1001 is late
and now due on Friday 8 May by 3 PM, ORD-1002 arrived on 28 April (still returnable for 30
days), ORD-1003 is being processed, and Jamie's Plus membership renews on 31 May. The demo
backend and the flows must be told this day, or the dates would drift out of the story.
"""

from __future__ import annotations

from datetime import date
from typing import Final

from kb.backend.model import Customer, Membership, Order

__all__ = ["DEMO_CUSTOMERS", "DEMO_MEMBERSHIPS", "DEMO_ORDERS", "DEMO_TODAY"]

DEMO_TODAY: Final = date(2026, 5, 6)

JAMIE, SAM = "CUST-1", "CUST-2"

DEMO_CUSTOMERS: Final[tuple[Customer, ...]] = (
    Customer(JAMIE, "Jamie Rivera", "+15550100", "43004"),
    Customer(SAM, "Sam Okafor", "+15550101", "94110"),
)

DEMO_ORDERS: Final[tuple[Order, ...]] = (
    Order(
        "ORD-1001", JAMIE, "wireless headphones", "electronics", "delayed",
        ordered_on=date(2026, 4, 30),
        status_detail="delayed by a regional logistics issue in Ohio",
        expected_on=date(2026, 5, 8), expected_by="3 PM",
    ),
    Order(
        "ORD-1002", SAM, "laptop stand", "electronics", "delivered",
        ordered_on=date(2026, 4, 23), delivered_on=date(2026, 4, 28),
    ),
    Order(
        "ORD-1003", JAMIE, "limited-edition headset", "limited_edition", "processing",
        ordered_on=date(2026, 5, 5), status_detail="ships within 2 business days",
    ),
    Order(
        "ORD-1004", SAM, "gift card", "digital", "delivered",
        ordered_on=date(2026, 4, 20), status_detail="delivered by email; activated",
        delivered_on=date(2026, 4, 20), activated=True,
    ),
)

# Jamie pays monthly and renews on the 31st (the last day of shorter months); Sam has no Plus.
DEMO_MEMBERSHIPS: Final[tuple[Membership, ...]] = (
    Membership(JAMIE, "plus", "active", renews_on=date(2026, 5, 31)),
)
