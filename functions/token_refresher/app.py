"""TokenRefresherFunction: scheduled QBO token refresh and connection health (R3, C5)."""

from qbsync.entrypoints import scheduled_handler
from qbsync.schedules import SCHEDULES

handler = scheduled_handler("token_refresher", SCHEDULES["token_refresher"])
