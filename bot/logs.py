"""Log lines: readable text on a terminal, one JSON object a line elsewhere (files, journald,
a container's log driver), so that a decision's story, route and reason can be searched.

Code attaches the facts with `extra=fields(story_id=…, route=…, reason=…)`; the JSON form
carries them as keys, and the text form shows the message, which already names them.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

FIELDS = ("story_id", "route", "reason", "delivery_id", "kind", "origin", "field")
_KEY = "alertbot"  # the LogRecord attribute that holds our fields


def fields(**facts: Any) -> dict[str, Any]:
    """`extra=` for a log call: the decision's facts, kept apart from LogRecord's own names."""
    return {_KEY: {k: v for k, v in facts.items() if v is not None}}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, _KEY, {}),
        }
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def setup(debug: bool, service: bool, stream: TextIO = sys.stderr) -> None:
    """The service logs its decisions; one-shot commands log only what needs attention."""
    handler = logging.StreamHandler(stream)
    if stream.isatty():
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(JsonFormatter())
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO if service else logging.WARNING,
        handlers=[handler], force=True,
    )
    for noisy in ("apscheduler", "slack_sdk", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
