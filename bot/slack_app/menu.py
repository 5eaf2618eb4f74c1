"""A batch item's menu: Claim, Done, Snooze 1 h / 4 h / tomorrow 08:00, Not relevant.

A batch lists up to 24 items in one message, where a row of buttons per item would not fit
Slack's 50 blocks: each item's section carries one select instead (its block names the story,
`item:<id>`; an option's value is only the choice, well inside Slack's 150 characters). Done and
Not relevant open their modals at once (the trigger_id expires in 3 s); the others are stored
as the buttons' presses are (claims.py).
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack_app import dismiss, done
from bot.slack_app.claims import Presses, press, story_of
from bot.slack_app.replies import ack_at_once

ACTION = "item_menu"
MODALS = {"done": done.open_modal, "dismiss": dismiss.open_modal}


def register(app: AsyncApp, presses: Presses) -> None:
    async def chosen(respond: AsyncRespond, body: dict[str, Any], action: dict[str, Any],
                     client: AsyncWebClient) -> None:
        choice = str((action.get("selected_option") or {}).get("value", ""))
        opener = MODALS.get(choice)
        if opener is not None:
            await opener(client, body, story_of(action))
        else:
            await press(presses, respond, body, action, client, choice)

    app.action(ACTION)(ack=ack_at_once, lazy=[chosen])
