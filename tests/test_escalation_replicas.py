"""Escalation exactly once across a restart and across three replicas on one PostgreSQL: the
`Service`s share a hand-moved clock; presses arrive at a replica's own `/slack/events`."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot import db as database
from bot.service import Service
from tests.conftest import new_pg_database
from tests.fakes import FakeSlack
from tests.harness import Clock, Desk
from tests.test_escalation import (
    T0,
    at,
    button,
    config,
    desk_with,
    escalations,
    item,
    press,
    run_until,
)


async def test_a_restart_before_the_delay_still_escalates_once(
    tmp_path: Path, sqlite_url: str, slack: FakeSlack,
) -> None:
    desk = await desk_with(tmp_path, sqlite_url, slack)
    await desk.ingest(item())
    await run_until(desk, 14)
    await desk.service.close()
    desk.service = Service(config(tmp_path, sqlite_url, slack), desk.clock)  # 10:14, anew
    try:
        await desk.ingest(item())  # the same story again, as a re-read file would bring it
        await run_until(desk, 15)
        await run_until(desk, 45)
        assert sorted(c.body["channel"] for c in escalations(slack)) == [
            "C0SPACEOPS", "U0ANA", "U0BO"]
    finally:
        await desk.service.close()


@pytest.mark.parametrize(("route", "expected", "why"), [
    ({"escalate_to": ["S0ONCALL", "U0ANA"]}, ["C0SPACEOPS", "U0ANA"],
     "cancelled: no longer in the route's escalate_to"),
    ({"escalate_after": None, "escalate_to": []}, [], "cancelled: the route no longer escalates"),
])
async def test_a_restart_with_the_escalation_edited_out_sends_only_what_is_left(
    tmp_path: Path, sqlite_url: str, slack: FakeSlack, route: dict[str, Any],
    expected: list[str], why: str,
) -> None:
    """The operator takes Bo out of escalate_to (or the route's escalation out) at 10:05 and
    restarts: what was queued for him (or for anyone) is not sent."""
    desk = await desk_with(tmp_path, sqlite_url, slack)
    await desk.ingest(item())
    await run_until(desk, 5)
    await desk.service.close()
    edited = {k: v for k, v in route.items() if v is not None}
    gone = [k for k, v in route.items() if v is None]
    desk.service = Service(config(tmp_path, sqlite_url, slack, **edited, _drop=gone),
                           desk.clock)
    try:
        await desk.service.check()  # as `alertbot run` does at start
        await run_until(desk, 45)
        assert sorted(c.body["channel"] for c in escalations(slack)) == expected
        assert {r.last_error for r in await desk.deliveries("cancelled")} == {why}
    finally:
        await desk.service.close()


@pytest.mark.postgres
async def test_three_replicas_on_postgresql_escalate_once(tmp_path: Path, postgres_server: str,
                                                          slack: FakeSlack) -> None:
    url = new_pg_database(postgres_server)
    database.upgrade(url)
    clock = Clock()
    clock.now = T0
    replicas = [Desk(Service(config(tmp_path / f"r{n}", url, slack), clock), slack,
                     None, clock) for n in range(3)]  # type: ignore[arg-type]

    async def everywhere(minutes: float) -> None:
        clock.now = at(minutes)
        await asyncio.gather(*(r.service.dispatcher.drain(timedelta(0)) for r in replicas))

    try:
        # Each replica is handed both stories (a feed every replica polls does this).
        await asyncio.gather(*(r.ingest(item(), item("s-claimed")) for r in replicas))
        await everywhere(0)
        claim = {"type": "button", "action_id": "item_claim", "value": "s-claimed"}
        clock.now = at(10)
        await press(replicas[2], button(claim), "s-claimed",
                    lambda found: found.state.value == "claimed")
        for minutes in (14.99, 15, 15, 60):
            await everywhere(minutes)
        sent = escalations(slack)
        assert sorted(c.body["channel"] for c in sent) == ["C0SPACEOPS", "U0ANA", "U0BO"]
        assert all("s-esc" in json.dumps(c.body) for c in sent)
        rows = [r for r in await replicas[0].deliveries() if r.kind == "escalate"]
        assert sorted(r.status for r in rows) == ["cancelled"] * 3 + ["sent"] * 3
    finally:
        for replica in replicas:
            await replica.service.close()
