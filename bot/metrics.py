"""What `/metrics` shows (Prometheus text format): one registry per service, fed by the doors,
the pipeline, the workers and the scheduler. Nothing here holds a secret: labels are kinds,
transports, outcomes, commands and job names, never addresses or tokens."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Seconds from a story's scored_at to its message sent: push alerts land in the first buckets,
# file polls and batch windows in the middle, quiet hours at the end.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900,
                   3600, 4 * 3600, 12 * 3600, 24 * 3600)
COMMAND_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 3)
# Seconds from a story's first Slack message to its claim: a desk on it picks it up in minutes,
# one that is not in hours.
CLAIM_BUCKETS = (30, 60, 120, 300, 600, 900, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600,
                 24 * 3600, 3 * 24 * 3600)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.stories_ingested = Counter(
            "alertbot_stories_ingested", "Stories stored (new or newer versions), by door.",
            ["origin"], registry=r)
        self.stories_rejected = Counter(
            "alertbot_stories_rejected", "Stories refused as malformed, by door.",
            ["origin"], registry=r)
        self.deliveries = Counter(
            "alertbot_deliveries", "Delivery attempts settled, by transport, kind and outcome "
            "(sent, failed, dead, postponed).", ["transport", "kind", "outcome"], registry=r)
        self.delivery_latency = Histogram(
            "alertbot_delivery_latency_seconds", "From a story's scored_at to its alert or "
            "batch being sent (instant deliveries).", ["transport"],
            buckets=LATENCY_BUCKETS, registry=r)
        self.outbox_depth = Gauge(
            "alertbot_outbox_depth", "Outbox rows waiting or in flight, by status "
            "(scheduled: pending, not due yet).",
            ["status"], registry=r)
        self.commands = Histogram(
            "alertbot_slash_command_seconds", "Slash commands and button presses answered, "
            "and how long each took.", ["command"], buckets=COMMAND_BUCKETS, registry=r)
        self.escalations_sent = Counter(
            "alertbot_escalations_sent", "Escalations of unclaimed action items sent (thread "
            "replies, DMs and channel posts), by the route that escalated.", ["route"],
            registry=r)
        self.job_last_run = Gauge(
            "alertbot_scheduler_last_run_timestamp_seconds", "When each scheduled job last "
            "finished (Unix time).", ["job"], registry=r)

        # Action items (docs/slack-app.md). The two gauges are read from the database at each
        # scrape, so every replica reports the same desk-wide figures.
        self.claim_seconds = Histogram(
            "alertbot_claim_seconds", "From a story's first Slack message sent to its claim "
            "(claims applied by this process).", buckets=CLAIM_BUCKETS, registry=r)
        self.open_items = Gauge(
            "alertbot_action_items_open", "Open action items nobody has claimed, done or "
            "dismissed, by impact band (the impact's whole number: 8 holds 8 to 8.9).",
            ["impact"], registry=r)
        self.verdicts = Gauge(
            "alertbot_action_item_verdicts", "The desk's verdicts on action items as stored "
            "(done, and dismissed by reason).", ["verdict", "reason"], registry=r)

    def commands_answered(self, command: str, seconds: float) -> None:
        self.commands.labels(command[:40]).observe(seconds)

    def exposition(self, depth: dict[str, int], tally: Tally | None = None) -> bytes:
        """The text format, with the outbox depth (and the action items' tally) read just now."""
        for status in ("pending", "failed", "sending", "scheduled"):
            self.outbox_depth.labels(status).set(depth.get(status, 0))
        if tally is not None:
            # Cleared first: a band or reason with no items left must not keep its last value.
            self.open_items.clear()
            for band, count in tally.open_by_impact.items():
                self.open_items.labels(str(band)).set(count)
            self.verdicts.clear()
            for (verdict, reason), count in tally.verdicts.items():
                self.verdicts.labels(verdict, reason).set(count)
        return generate_latest(self.registry)


@dataclass(frozen=True)
class Tally:
    """The action items counted at a scrape: open ones by impact band, verdicts by reason."""

    open_by_impact: dict[int, int] = field(default_factory=dict)
    verdicts: dict[tuple[str, str], int] = field(default_factory=dict)  # (verdict, reason)


def origin_kind(origin: str) -> str:
    """A door's name without its detail: `file:/srv/x.jsonl` → `file` (bounded label values)."""
    return origin.partition(":")[0]
