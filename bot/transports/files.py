"""Credential-less transports: write what would be sent under var/outbox/ (README.md)."""

from __future__ import annotations

import json
import re
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from bot.transports import Outgoing


def _name(stem: str, counter: int) -> str:
    return f"{counter:06d}-{re.sub(r'[^A-Za-z0-9._-]+', '_', stem)[:80]}"


class SlackFileTransport:
    """Writes each chat.postMessage payload as JSON in `folder`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._counter = len(list(folder.glob("*.json"))) if folder.is_dir() else 0

    async def send(self, calls: list[tuple[str, dict[str, Any]]]) -> str | None:
        """Write each Web API call as one file: its arguments, with the method named."""
        self.folder.mkdir(parents=True, exist_ok=True)
        first: str | None = None
        for method, args in calls:
            self._counter += 1
            path = self.folder / f"{_name(args['channel'], self._counter)}.json"
            payload = {"method": method, **args}
            path.write_text(json.dumps(payload, indent=2, ensure_ascii=False), encoding="utf-8")
            first = first or f"file:{path.name}"
        return first

    async def idle(self) -> None:
        return None

    async def close(self) -> None:
        return None


class EmailFileTransport:
    """Writes each email as an .eml file in `folder`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._counter = len(list(folder.glob("*.eml"))) if folder.is_dir() else 0

    async def send(self, message: EmailMessage | Outgoing) -> str | None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._counter += 1
        if isinstance(message, Outgoing):
            path = self.folder / f"{_name(message.recipient, self._counter)}.eml"
            path.write_bytes(message.data)
            return message.message_id
        path = self.folder / f"{_name(str(message['To']), self._counter)}.eml"
        path.write_bytes(bytes(message))
        return str(message["Message-ID"])

    async def idle(self) -> None:
        return None

    async def close(self) -> None:
        return None
