"""Daily digests: one per subscriber per local date at their hour, across DST and restarts."""

from __future__ import annotations

import email.utils
import re
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest

from bot.readers import subscribers
from bot.readers.subscribers import unsubscribe_token
from bot.rules.digest_clock import digest_time, due, first_due
from bot.service import Service
from tests.conftest import story
from tests.fakes import FakeSlack, SmtpRecorder
from tests.harness import Clock, Desk, desk_config

ZONES = ("Pacific/Auckland", "Europe/London", "America/Los_Angeles")
STEP = timedelta(minutes=10)  # the simulated scheduler tick
Factory = Callable[..., Desk]


# -- the pure clock ---------------------------------------------------------------------------


@pytest.mark.parametrize(("day", "zone", "utc"), [
    (date(2026, 3, 28), "Europe/London", datetime(2026, 3, 28, 7, 0)),  # GMT
    (date(2026, 3, 29), "Europe/London", datetime(2026, 3, 29, 6, 0)),  # BST from 01:00
    (date(2026, 4, 4), "Pacific/Auckland", datetime(2026, 4, 3, 18, 0)),  # NZDT +13
    (date(2026, 4, 5), "Pacific/Auckland", datetime(2026, 4, 4, 19, 0)),  # NZST +12 from 03:00
    (date(2026, 10, 31), "America/Los_Angeles", datetime(2026, 10, 31, 14, 0)),  # PDT
    (date(2026, 11, 1), "America/Los_Angeles", datetime(2026, 11, 1, 15, 0)),  # PST
])
def test_seven_local_stays_seven_local_across_dst(day: date, zone: str, utc: datetime) -> None:
    assert digest_time(day, zone, "07:00") == utc.replace(tzinfo=UTC)


def test_an_hour_inside_the_spring_forward_gap_falls_after_it() -> None:
    # London skips 01:00–02:00 on 2026-03-29: "01:30" is read with the winter offset.
    at = digest_time(date(2026, 3, 29), "Europe/London", "01:30")
    assert at == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert at.astimezone(ZoneInfo("Europe/London")).strftime("%H:%M %Z") == "02:30 BST"


def test_due_sends_late_the_same_local_day_and_never_the_next() -> None:
    london = "Europe/London"
    scheduled = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)
    late = due(datetime(2026, 11, 27, 9, 0, tzinfo=UTC), london, "07:00", scheduled)
    assert late.day == date(2026, 11, 27)
    assert late.next_at == datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
    assert "sent late at 09:00 UTC" in late.reason
    next_day = due(datetime(2026, 11, 28, 6, 0, tzinfo=UTC), london, "07:00", scheduled)
    assert next_day.day is None  # 2026-11-27's digest is gone; 2026-11-28's comes at 07:00
    assert next_day.next_at == datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
    assert "2026-11-27 digest hour passed" in next_day.reason
    assert first_due(datetime(2026, 11, 27, 6, 59, tzinfo=UTC), london, "07:00") == scheduled
    assert first_due(scheduled, london, "07:00") == datetime(2026, 11, 28, 7, 0, tzinfo=UTC)


# -- through the service, a real SMTP server and a clock the test moves ----------------------


@pytest.fixture
async def make_desk(tmp_path: Path, sqlite_url: str, slack: FakeSlack,
                    smtp: tuple[SmtpRecorder, int]) -> AsyncIterator[Factory]:
    """Services over one database, as restarts: each call starts a new one on the same clock."""
    services: list[Service] = []
    clock = Clock()

    def make(**email: Any) -> Desk:
        config = desk_config(tmp_path, sqlite_url, slack, smtp[1],
                             email={"batch_window": "0s", **email})
        service = Service(config, clock)
        services.append(service)
        return Desk(service, slack, smtp[0], clock)

    yield make
    for service in services:
        await service.close()


async def add_daily(desk: Desk, address: str, zone: str, mode: str = "daily",
                    topics: tuple[str, ...] = (), hour: str = "07:00") -> None:
    subscriber = subscribers.validate(address, mode, zone, topics, hour)
    await desk.service.db.write(subscribers.add, subscriber, desk.clock())


async def tick(desk: Desk) -> None:
    """What the scheduler's digest job and the delivery workers do at one moment."""
    await desk.service.plan_digests()
    await desk.service.dispatcher.drain(timedelta(seconds=30))


def digests_by_local_date(desk: Desk, address: str, zone: str) -> Counter[date]:
    sent = [email.utils.parsedate_to_datetime(m["Date"]).astimezone(ZoneInfo(zone))
            for m in desk.emails(address) if m["Subject"].startswith("Daily digest")]
    return Counter(moment.date() for moment in sent)


def local_send_times(desk: Desk, address: str, zone: str) -> list[datetime]:
    return [email.utils.parsedate_to_datetime(m["Date"]).astimezone(ZoneInfo(zone))
            for m in desk.emails(address) if m["Subject"].startswith("Daily digest")]


@pytest.mark.parametrize(("start", "days"), [
    (datetime(2026, 3, 27, 0, 0, tzinfo=UTC), 10),  # London springs forward 29 Mar, Auckland
    # falls back 5 Apr
    (datetime(2026, 9, 24, 0, 0, tzinfo=UTC), 8),  # Auckland springs forward 27 Sep
    (datetime(2026, 10, 23, 0, 0, tzinfo=UTC), 10),  # London falls back 25 Oct, LA 1 Nov
], ids=["march-april", "september", "october-november"])
async def test_one_digest_per_local_date_at_seven_local_across_dst_changes(
    make_desk: Factory, start: datetime, days: int,
) -> None:
    desk = make_desk(send_empty_digest=True)
    desk.clock.now = start
    for zone in ZONES:
        await add_daily(desk, f"{zone.split('/')[1].lower()}@desk.example", zone)
    end = start + timedelta(days=days)
    while desk.clock.now < end:
        if desk.clock.now.hour == 12 and desk.clock.now.minute == 0:  # news once a day
            at = desk.clock.now
            await desk.ingest(story(id=f"news-{at:%m%d}", scored_at=at.isoformat()))
        await tick(desk)
        desk.clock.advance(STEP.total_seconds())

    for zone in ZONES:
        address = f"{zone.split('/')[1].lower()}@desk.example"
        times = local_send_times(desk, address, zone)
        per_date = Counter(t.date() for t in times)
        first = (start + STEP).astimezone(ZoneInfo(zone)).date()
        last = (end - STEP).astimezone(ZoneInfo(zone)).date()
        expected_dates = {first + timedelta(days=n) for n in range((last - first).days + 1)}
        # Every local date whose 07:00 fell inside the run: exactly one digest, at 07:00.
        expected_dates = {d for d in expected_dates if start < digest_time(d, zone, "07:00") < end}
        assert set(per_date) == expected_dates, zone
        assert set(per_date.values()) == {1}, zone
        for moment in times:
            assert timedelta(0) <= moment.replace(tzinfo=None) - datetime.combine(
                moment.date(), datetime.min.time()).replace(hour=7) < STEP, (zone, moment)


async def test_a_restart_across_the_hour_still_gives_exactly_one(make_desk: Factory) -> None:
    first = make_desk()
    first.clock.now = datetime(2026, 11, 27, 6, 50, tzinfo=UTC)  # London, GMT
    await add_daily(first, "ed@desk.example", "Europe/London")
    await first.ingest(story(id="overnight", scored_at=first.clock.now.isoformat()))
    await tick(first)
    assert first.emails() == []
    await first.service.close()

    # Planned at 07:00, then the process dies before the row is delivered.
    second = make_desk()
    second.clock.now = datetime(2026, 11, 27, 7, 0, 5, tzinfo=UTC)
    assert (await second.service.plan_digests()).planned == 1
    await second.service.close()

    third = make_desk()  # starts at 07:01: delivers the planned row, plans nothing new
    third.clock.advance(60)
    await tick(third)
    assert (await third.service.plan_digests()).planned == 0
    third.clock.advance(3600)
    await tick(third)
    assert digests_by_local_date(third, "ed@desk.example", "Europe/London") == {
        date(2026, 11, 27): 1}
    [row] = [r for r in await third.deliveries() if r.kind == "daily"]
    assert row.dedupe_key == "daily:ed@desk.example:2026-11-27" and row.status == "sent"


async def test_digest_send_now_sends_todays_digest_early_and_the_hour_adds_no_second(
    make_desk: Factory,
) -> None:
    desk = await morning(make_desk)
    desk.clock.now = datetime(2026, 11, 27, 5, 0, tzinfo=UTC)  # 05:00 London
    await add_daily(desk, "ed@desk.example", "Europe/London")
    await desk.ingest(story(id="early", scored_at=desk.clock.now.isoformat()))
    desk.clock.advance(600)
    assert (await desk.service.send_digests(force=True))["sent"] == 1
    desk.clock.advance(600)
    await desk.ingest(story(id="later", scored_at=desk.clock.now.isoformat()))
    desk.clock.advance(600)
    again = await desk.service.plan_digests(force=True)
    assert (again.planned, again.already) == (0, 1)  # one per local date, --now included
    desk.clock.now = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)
    await tick(desk)  # the usual hour: today's digest went early, so nothing
    assert len(desk.emails()) == 1
    desk.clock.now = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
    await tick(desk)  # tomorrow's carries what came after the early one
    [_, tomorrow] = desk.emails()
    assert "Title" not in tomorrow["Subject"] and tomorrow["Subject"].endswith("1 action item")


async def test_a_bot_down_from_six_to_nine_sends_at_nine(make_desk: Factory) -> None:
    desk = make_desk()
    desk.clock.now = datetime(2026, 11, 27, 5, 50, tzinfo=UTC)
    await add_daily(desk, "ed@desk.example", "Europe/London")
    await desk.ingest(story(id="overnight", scored_at=desk.clock.now.isoformat()))
    await tick(desk)  # 05:50: nothing due
    await desk.service.close()

    back = make_desk()
    back.clock.now = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    await tick(back)
    [sent] = local_send_times(back, "ed@desk.example", "Europe/London")
    assert sent.strftime("%Y-%m-%d %H:%M") == "2026-11-27 09:00"
    [row] = [r for r in await back.deliveries() if r.kind == "daily"]
    assert "sent late at 09:00 UTC" in row.reason


async def test_a_bot_down_all_day_skips_that_date_and_the_next_digest_covers_it(
    make_desk: Factory,
) -> None:
    desk = make_desk()
    desk.clock.now = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
    await add_daily(desk, "ed@desk.example", "UTC")
    await desk.ingest(story(id="before", title="Covered on the 26th",
                            scored_at=desk.clock.now.isoformat()))
    desk.clock.now = datetime(2026, 11, 26, 7, 0, tzinfo=UTC)
    await tick(desk)  # 26 Nov's digest
    desk.clock.advance(3600)
    await desk.ingest(story(id="missed-day", title="Arrived while nobody read",
                            scored_at=desk.clock.now.isoformat()))
    await desk.service.close()

    back = make_desk()  # down through 27 Nov 07:00 until 28 Nov 06:00
    back.clock.now = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)
    await tick(back)
    assert len(back.emails()) == 1  # 27 Nov's digest is not sent on the 28th
    back.clock.now = datetime(2026, 11, 28, 6, 30, tzinfo=UTC)
    await back.ingest(story(id="today", title="Fresh this morning", impact=9,
                            scored_at=back.clock.now.isoformat()))
    back.clock.now = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
    await tick(back)
    assert sorted(digests_by_local_date(back, "ed@desk.example", "UTC")) == [
        date(2026, 11, 26), date(2026, 11, 28)]
    latest = back.emails()[-1]
    body = latest.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    # Everything since the 26th's digest (over 24 h), highest impact first; nothing repeated.
    assert body.index("Fresh this morning") < body.index("Arrived while nobody read")
    assert "Covered on the 26th" not in body
    assert latest["Subject"] == "Daily digest, Sat 28 Nov 2026: 2 action items"


# -- what the digest holds, and the email itself ----------------------------------------------

HOSTILE = '<script>alert(1)</script> <img src="https://evil.example/pixel.gif"> & "quotes"'


async def morning(make_desk: Factory, **email: Any) -> Desk:
    desk = make_desk(**email)
    desk.clock.now = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
    return desk


async def test_the_digest_holds_the_readers_topics_best_first_and_marks_instant_alerts(
    make_desk: Factory,
) -> None:
    desk = await morning(make_desk)
    await add_daily(desk, "daily@desk.example", "UTC", topics=("launch",))
    await add_daily(desk, "both@desk.example", "UTC", mode="both")
    at = desk.clock.now
    await desk.ingest(
        story(id="low", title="Impact eight, two sources", impact=8, scored_at=at.isoformat()),
        story(id="high", title="Impact nine", impact=9, scored_at=at.isoformat()),
        story(id="wide", title="Impact eight, three sources", impact=8,
              scored_at=at.isoformat(),
              sources=[{"outlet": o} for o in ("SpaceNews", "Reuters", "AP")]),
        story(id="budget", title="Budget only", topics=["budget"], scored_at=at.isoformat()),
    )
    await desk.service.dispatcher.drain(timedelta(seconds=30))  # the instant email to both@
    desk.clock.now = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)
    await tick(desk)

    [topical] = [m for m in desk.emails("daily@desk.example")]
    text = topical.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    order = [text.index(t) for t in ("Impact nine", "Impact eight, three sources",
                                     "Impact eight, two sources")]
    assert order == sorted(order) and "Budget only" not in text
    assert "already sent to you" not in text
    assert topical["Subject"] == "Daily digest, Fri 27 Nov 2026: 3 action items"

    digest = next(m for m in desk.emails("both@desk.example") if "Daily" in m["Subject"])
    text = digest.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Budget only [already sent to you as an alert]" in text
    assert text.count("[already sent to you as an alert]") == 4


async def test_a_story_stored_ten_seconds_before_the_hour_is_in_that_digest(
    make_desk: Factory,
) -> None:
    desk = make_desk()
    desk.clock.now = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)  # London, GMT
    await add_daily(desk, "ed@desk.example", "Europe/London")
    desk.clock.now = datetime(2026, 11, 27, 6, 59, 50, tzinfo=UTC)
    await desk.ingest(story(id="last-minute", title="Stored at 06:59:50",
                            scored_at=desk.clock.now.isoformat()))
    desk.clock.now = datetime(2026, 11, 27, 7, 0, 0, tzinfo=UTC)
    assert (await desk.service.plan_digests()).planned == 1
    # Stored once the digest is planned (same second): it waits for tomorrow's, not lost.
    await desk.ingest(story(id="just-after", title="Stored after planning",
                            scored_at=desk.clock.now.isoformat()))
    await desk.service.dispatcher.drain(timedelta(seconds=30))
    [today] = desk.emails("ed@desk.example")
    body = today.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Stored at 06:59:50" in body and "Stored after planning" not in body
    desk.clock.now = datetime(2026, 11, 28, 7, 0, 0, tzinfo=UTC)
    await tick(desk)
    tomorrow = desk.emails("ed@desk.example")[1].get_body(("plain",))
    assert "Stored after planning" in tomorrow.get_content()  # type: ignore[union-attr]
    stories = [row.details["stories"] for row in await desk.deliveries() if row.kind == "daily"]
    assert sorted(stories) == [["just-after"], ["last-minute"]]


async def test_the_first_digest_looks_back_24_hours_and_an_empty_one_is_not_sent(
    make_desk: Factory,
) -> None:
    desk = await morning(make_desk)
    desk.clock.now = datetime(2026, 11, 26, 5, 0, tzinfo=UTC)  # 26 h before the digest
    await desk.ingest(story(id="old-news", scored_at=desk.clock.now.isoformat()))
    desk.clock.now = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
    await add_daily(desk, "quiet@desk.example", "UTC")
    desk.clock.now = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)
    await tick(desk)
    assert desk.emails() == []  # the only action item is older than 24 h: nothing to send
    assert [r for r in await desk.deliveries() if r.kind == "daily"] == []


async def test_send_empty_digest_says_there_was_no_news(make_desk: Factory) -> None:
    desk = await morning(make_desk, send_empty_digest=True)
    await add_daily(desk, "quiet@desk.example", "Europe/London")
    desk.clock.now = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)
    await tick(desk)
    [sent] = desk.emails()
    assert sent["Subject"] == "Daily digest, Fri 27 Nov 2026: no new action items"
    # A first digest looks back 24 h from the moment it is planned.
    assert "No new action items since Thu 07:00 GMT" in sent.get_body(  # type: ignore[union-attr]
        ("plain",)).get_content()


async def test_the_digest_email_arrives_well_formed_and_one_click_unsubscribes(
    make_desk: Factory,
) -> None:
    desk = await morning(make_desk)
    await add_daily(desk, "ed@desk.example", "Europe/London")
    await add_daily(desk, "other@desk.example", "Europe/London")
    await desk.ingest(story(id="unicode", title="Ariane 6 lifts off from Kourou — “nominal” 🚀",
                            scored_at=desk.clock.now.isoformat()))
    desk.clock.now = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)
    await tick(desk)
    [received] = desk.emails("ed@desk.example")

    assert received.get_content_type() == "multipart/alternative"
    parts = [(p.get_content_type(), p.get_content_charset()) for p in received.iter_parts()]
    assert parts == [("text/plain", "utf-8"), ("text/html", "utf-8")]
    assert "Kourou — “nominal” 🚀" in received.get_body(  # type: ignore[union-attr]
        ("html",)).get_content()
    links = re.findall(r"<([^>]+)>", str(received["List-Unsubscribe"]))
    assert [urlsplit(link).scheme for link in links] == ["https"]  # no mailto: nothing reads it
    assert received["Auto-Submitted"] == "auto-generated"
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert received["Message-ID"] and received["Date"]
    path = urlsplit(links[0]).path

    key = desk.service.dispatcher.key
    theirs = unsubscribe_token(key, "other@desk.example")
    mine = path.rsplit("/", 1)[1]
    async with desk.web() as client:
        for forged in (mine.split(".")[0] + "." + theirs.split(".")[1], mine[:-1] + "x"):
            refused = await client.post(f"/unsubscribe/{forged}",
                                        content=b"List-Unsubscribe=One-Click")
            assert refused.status_code == 400
        assert len(await desk.service.db.read(subscribers.listing)) == 2
        done = await client.post(path, content=b"List-Unsubscribe=One-Click",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert done.status_code == 200
    assert [s.email for s in await desk.service.db.read(subscribers.listing)] == [
        "other@desk.example"]

    await desk.ingest(story(id="next-day", scored_at=desk.clock.now.isoformat()))
    desk.clock.now = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
    await tick(desk)
    assert len(desk.emails("ed@desk.example")) == 1  # no further email
    assert len(desk.emails("other@desk.example")) == 2


async def test_the_digest_html_escapes_every_story_field_and_loads_nothing_external(
    make_desk: Factory,
) -> None:
    desk = await morning(make_desk)
    await add_daily(desk, "ed@desk.example", "UTC")
    await desk.ingest(story(
        id="hostile", title=f"Title {HOSTILE}", key_facts=[f"Fact {HOSTILE}"],
        key_takeaways=[f"Takeaway {HOSTILE}"], scored_at=desk.clock.now.isoformat(),
        sources=[{"outlet": f"Outlet {HOSTILE}", "url": "https://a.example/1"},
                 {"outlet": "Reuters", "url": "https://www.reuters.com/b"}],
        url='https://desk.example/s/1?a=1&b="><script>x</script>',
    ))
    desk.clock.now = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)
    await tick(desk)
    [received] = desk.emails("ed@desk.example")
    page = Page.parse(received.get_body(("html",)).get_content())  # type: ignore[union-attr]

    # Every hostile field reached the reader as text, not as markup.
    for field in ("Title", "Fact", "Outlet"):
        assert f"{field} {HOSTILE}" in page.text
    assert page.tags & {"script", "img"} == set()
    assert "https://desk.example/s/1?a=1&b=\"><script>x</script>" in page.hrefs
    # Nothing the mail client would fetch: no images, stylesheets, fonts, frames or CSS urls.
    assert page.tags & {"img", "link", "script", "iframe", "object", "embed", "video",
                        "audio", "picture", "source"} == set()
    assert page.fetching_attributes == []
    assert not re.search(r"url\(|@import", page.css, re.I)
    assert {urlsplit(h).hostname for h in page.hrefs} == {"desk.example", "alerts.desk.example"}


class Page(HTMLParser):
    """An HTML document as a mail client reads it: tags, attributes, text and CSS."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.hrefs: list[str] = []
        self.fetching_attributes: list[tuple[str, str]] = []
        self.text = ""
        self.css = ""
        self._in_style = False

    @classmethod
    def parse(cls, html: str) -> Page:
        page = cls()
        page.feed(html)
        page.close()
        return page

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self._in_style = tag == "style"
        for name, value in attrs:
            if name == "href" and value:
                self.hrefs.append(value)
            elif name == "style" and value:
                self.css += value
            elif name in ("src", "srcset", "background", "poster", "data"):
                self.fetching_attributes.append((name, value or ""))

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.css += data
        else:
            self.text += data
