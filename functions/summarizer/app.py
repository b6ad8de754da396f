"""SummarizerFunction: scheduled summarized journal entries (S1, T5) — queues a run for every summarized tenant."""

from qbsync.entrypoints import scheduled_handler
from qbsync.schedules import SCHEDULES

handler = scheduled_handler("summarizer", SCHEDULES["summarizer"])
