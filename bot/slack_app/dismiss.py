"""Not relevant: the button opens a modal asking why; its submission records the dismissal.

It opens and stores as Done does (item_forms.py); only the reason and note it reads differ.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.db import Database
from bot.rules.claims import Reason, Request, Verb
from bot.settings import DeskConfig
from bot.slack_app.item_forms import open_form, register_form
from bot.slack_app.replies import Clock

CALLBACK = "item_dismiss"
TEMPLATE = "dismiss_modal"


async def open_modal(client: AsyncWebClient, body: dict[str, Any], story_id: str) -> None:
    """The Not-relevant modal for `story_id` (a batch item's menu opens it too: menu.py)."""
    await open_form(client, body, TEMPLATE, story_id)


def register(app: AsyncApp, db: Database, desk: DeskConfig, clock: Clock,
             wake: Callable[[], None]) -> None:
    register_form(app, db, desk, clock, wake, callback=CALLBACK, template=TEMPLATE,
                  read=_request)


def _request(values: dict[str, Any], user: str, groups: frozenset[str],
             name: str | None) -> Request:
    chosen = (values.get("reason", {}).get("reason", {}).get("selected_option") or {})
    note = values.get("note", {}).get("note", {}).get("value") or None
    try:
        reason = Reason(chosen.get("value", "other"))
    except ValueError:
        reason = Reason.OTHER  # a forged or older option: still a dismissal, reason unknown
    return Request(Verb.DISMISS, user, groups, note=note, reason=reason, name=name)
