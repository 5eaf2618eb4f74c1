"""The service: one event loop for the HTTP server, the scheduler and the delivery workers.

`Service` (core.py) wires the pieces together; `run()` serves forever (serving.py), `check()`
does one pass for cron. The sources it polls are in polling.py, the transports it sends
through are built in transports.py.
"""

from bot.service.core import (
    CHECK_LONGEST_WAIT,
    DIGEST_EVERY,
    PARSE_INLINE_BYTES,
    STOP_GRACE,
    Service,
)
from bot.service.transports import build_transports

__all__ = ["CHECK_LONGEST_WAIT", "DIGEST_EVERY", "PARSE_INLINE_BYTES", "STOP_GRACE", "Service",
           "build_transports"]
