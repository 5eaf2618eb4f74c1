"""`confirm`: the email that asks a person who signed up on the sign-up page to confirm their
address (double opt-in). It carries no story; `details["expires"]` is when its link stops
working, and the link's token is signed as it is rendered, so a retry sends the same link and
the outbox keeps no token. Templates: `email/confirm.{subject.txt,txt,html}`.

It has no unsubscribe headers: the address is not subscribed to anything yet, and ignoring
the email is how to decline (docs/decisions.md, "Self sign-up").
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from bot.messages import mail
from bot.messages.kinds.base import Kind, Load, Message, Shared
from bot.readers.signup import confirm_token
from bot.transports import DeliveryError

if TYPE_CHECKING:
    from bot.messages import Renderer


class Confirm(Kind):
    name = "confirm"
    needs_stories = False

    def load(self, db: Connection, row: Any, shared: Shared) -> Load:
        return Load([])

    def render(self, renderer: Renderer, message: Message) -> Any:
        if message.transport != "email":
            raise DeliveryError("a sign-up confirmation is sent by email only", permanent=True)
        expires = int(message.details["expires"])
        token = confirm_token(renderer.key, message.address, expires)
        settings = renderer.config.settings
        url = f"{settings.public_url.rstrip('/')}/signup/confirm/{token}"
        email = mail.compose(self.name, [], message.address, settings, renderer.key,
                             message.now, confirm_url=url,
                             expires=datetime.fromtimestamp(expires, UTC))
        del email["List-Unsubscribe"]  # nothing to leave yet (see above)
        del email["List-Unsubscribe-Post"]
        return email


KIND = Confirm()
