"""JobSweeperFunction: scheduled stuck-job and dead-letter recovery (R4)."""

from qbsync.entrypoints import scheduled_handler
from qbsync.schedules import SCHEDULES

handler = scheduled_handler("job_sweeper", SCHEDULES["job_sweeper"])
