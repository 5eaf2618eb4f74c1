"""`test`: a marked test message from `alertbot test slack|email` (`Service.send_test`). It
carries no story, and reports at once: dead on its first failure, never postponed by a
Retry-After, so the operator sees the outcome now. Templates: `slack/test.json.j2`,
`email/test.{subject.txt,txt,html}`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from bot.messages.kinds.base import Kind, Load, Shared


class TestMessage(Kind):
    __test__ = False  # not a pytest class
    name = "test"
    one_try = True
    needs_stories = False

    def load(self, db: Connection, row: Any, shared: Shared) -> Load:
        return Load([])


KIND = TestMessage()
