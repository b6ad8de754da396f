"""ReconcilerFunction: scheduled reconciliation of paid status and payments (R1, R2)."""

from qbsync.entrypoints import scheduled_handler
from qbsync.schedules import SCHEDULES

handler = scheduled_handler("reconciler", SCHEDULES["reconciler"])
