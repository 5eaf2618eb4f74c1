"""Transports only send. Each classifies its own failures with one `DeliveryError`."""

from __future__ import annotations

from typing import Any, Protocol


class DeliveryError(Exception):
    """A send failed. `permanent` failures are not retried; `retry_after` is the peer's wish."""

    def __init__(self, message: str, *, permanent: bool = False,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


class Transport(Protocol):
    async def send(self, message: Any) -> str | None:
        """Send one rendered message; return the peer's id for it (Slack ts, Message-ID)."""

    async def idle(self) -> None:
        """Called when the queue runs dry: release connections held for a batch."""

    async def close(self) -> None: ...
