"""`alert`: one action item, posted to a Slack route or emailed to an instant subscriber as
soon as it is planned (`outbox.plan_deliveries`). Templates: `slack/alert.json.j2`,
`email/alert.{subject.txt,txt,html}`."""

from __future__ import annotations

from bot.messages.kinds.base import Kind


class Alert(Kind):
    name = "alert"
    instant = True


KIND = Alert()
