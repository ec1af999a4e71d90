"""A contact-centre toolkit for collection agencies and billing offices.

Service levels as data and functions, routing, Erlang C staffing, a
wallboard feed and a daily report, all computed from
:class:`ContactRecord` objects. Pure functions: a vendor's telephony or
ticketing system passes its records, agents and the instant ``now``.

>>> import datetime as dt
>>> from carecollect.contact_centre import required_agents
>>> required_agents(100, dt.timedelta(minutes=30), dt.timedelta(seconds=180),
...                 target_share=0.8, within=dt.timedelta(seconds=20)).agents
14
"""

from __future__ import annotations

from ..deprecation import renamed
from .records import (
    ContactChannel,
    ContactHistoryEvent,
    ContactOutcome,
    ContactRecord,
    ContactState,
    Conversation,
    Direction,
    HistoryKind,
    Topic,
    conversations,
    meet_in_dispute,
)
from .routing import (
    AccountState,
    Agent,
    Competence,
    HomeChannel,
    Priority,
    QueueKind,
    Routing,
    offer_order,
    queue_name,
    queue_order,
    route,
)
from .service_levels import (
    AbandonRule,
    AnswerTimeTarget,
    QueueFigures,
    ResponseTarget,
    Target,
    measure,
    response_deadline,
)
from .staffing import (
    StaffingLevel,
    StaffingPlan,
    average_speed_of_answer,
    erlang_b,
    erlang_c,
    occupancy,
    required_agents,
    service_level,
    staffing_levels,
    traffic_intensity,
)
from .wallboard import DailyReport, QueueTile, Wallboard, daily_contact_centre_report, wallboard_snapshot

__all__ = [
    "AbandonRule",
    "AccountState",
    "Agent",
    "AnswerTimeTarget",
    "Competence",
    "ContactChannel",
    "ContactHistoryEvent",
    "ContactOutcome",
    "ContactRecord",
    "ContactState",
    "Conversation",
    "DailyReport",
    "Direction",
    "HistoryKind",
    "HomeChannel",
    "Priority",
    "QueueFigures",
    "QueueKind",
    "QueueTile",
    "ResponseTarget",
    "Routing",
    "StaffingLevel",
    "StaffingPlan",
    "Target",
    "Topic",
    "Wallboard",
    "average_speed_of_answer",
    "conversations",
    "daily_contact_centre_report",
    "erlang_b",
    "erlang_c",
    "measure",
    "meet_in_dispute",
    "occupancy",
    "offer_order",
    "queue_name",
    "queue_order",
    "required_agents",
    "response_deadline",
    "route",
    "service_level",
    "staffing_levels",
    "traffic_intensity",
    "wallboard_snapshot",
]


__getattr__ = renamed(__name__, {"Outcome": "carecollect.contact_centre.records:ContactOutcome"})
