"""Transports only send. Each classifies its own failures with one `DeliveryError`.

What they receive is defined here, below everything that builds it: a Slack message is a list
of Web API calls (`SlackCall`), an email is `Outgoing` bytes. Transports import nothing else
from alertbot (an import-linter contract in pyproject.toml holds them to it).
"""

from __future__ import annotations

from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, Protocol

SlackCall = tuple[str, dict[str, Any]]  # (Web API method, arguments)


@dataclass(frozen=True)
class Outgoing:
    """An addressed email already serialized (CRLF line ends): the SMTP transport sends the
    bytes as they are."""

    sender: str
    recipient: str
    message_id: str
    data: bytes

    def parsed(self) -> EmailMessage:
        return message_from_bytes(self.data, policy=policy.default)


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
