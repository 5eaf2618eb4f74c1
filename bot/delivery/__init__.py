"""Delivery workers: claim due outbox rows, render, send, settle. The one place that retries.

Order per row: claim (lease) → render → pace per target → send → record. A row is claimed only
when its target is neither busy (here or in another replica) nor inside its pacing gap, kept in
the database, so one channel never gets two messages at once and never more than one per
`slack.pacing`, however many replicas run. Workers sleep on an event that ingest sets
right after it commits new rows, so a pushed story is sent without waiting for a poll.

`workers.py` claims, sends and decides each outcome; `settling.py` records outcomes, many to a
transaction.
"""

from bot.delivery.settling import Outcome
from bot.delivery.workers import Clock, Dispatcher, utcnow

__all__ = ["Clock", "Dispatcher", "Outcome", "utcnow"]
