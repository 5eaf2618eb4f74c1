"""Done: the button opens a modal for an optional note; its submission records the press.

It opens and stores as "Not relevant" does (item_forms.py). The note is shown where the state
is: "Done by @ana: filed follow-up".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.db import Database
from bot.rules.claims import Request, Verb
from bot.settings import DeskConfig
from bot.slack_app.item_forms import open_form, register_form
from bot.slack_app.replies import Clock

CALLBACK = "item_done"
TEMPLATE = "done_modal"


async def open_modal(client: AsyncWebClient, body: dict[str, Any], story_id: str) -> None:
    """The Done modal for `story_id` (a batch item's menu opens it too: menu.py)."""
    await open_form(client, body, TEMPLATE, story_id)


def register(app: AsyncApp, db: Database, desk: DeskConfig, clock: Clock,
             wake: Callable[[], None]) -> None:
    register_form(app, db, desk, clock, wake, callback=CALLBACK, template=TEMPLATE,
                  read=_request)


def _request(values: dict[str, Any], user: str, groups: frozenset[str],
             name: str | None) -> Request:
    note = values.get("note", {}).get("note", {}).get("value") or None
    return Request(Verb.DONE, user, groups, note=note, name=name)
