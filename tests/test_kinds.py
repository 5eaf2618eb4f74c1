"""Message kinds: one module each behind one registry (`bot/messages/kinds/`), the only code
that knows a kind by its name; "digest" is only the daily digest (migration 0009)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import text

from bot import db as database
from bot.delivery import Dispatcher
from bot.messages import Renderer
from bot.messages.kinds import KINDS, Load, Message, Unknown, kind_of
from bot.messages.kinds import daily as daily_kind
from bot.messages.mail import render_parts
from bot.messages.render import Item, item_context, story_context, templates_dir
from bot.readers.signup import verify_confirm_token
from bot.service import Service
from bot.stories.model import Story
from bot.transports import DeliveryError
from tests.conftest import make_config, story
from tests.fakes import FakeSlack, SmtpRecorder
from tests.harness import Clock, Desk, desk_config, titles

BOT = Path(__file__).parents[1] / "bot"
NOW = datetime(2026, 3, 5, 15, 0, tzinfo=UTC)
# Which templates each kind renders from: Slack, email, or both.
TEMPLATES = {"alert": {"slack", "email"}, "batch": {"slack", "email"},
             "test": {"slack", "email"}, "daily": {"email"}, "update": {"slack"},
             "facts": {"slack"}, "owner": {"slack"}, "escalate": {"slack"}, "unfurl": {"slack"},
             "confirm": {"email"}}


def test_the_registry_holds_each_kind_once_under_its_name() -> None:
    assert set(KINDS) == set(TEMPLATES)
    assert all(kind.name == name and kind_of(name) is kind for name, kind in KINDS.items())
    assert kind_of("digest") is KINDS["batch"]  # rows stored before 0009, or by an older replica


def test_the_workers_traits_are_the_kinds() -> None:
    assert {name for name, kind in KINDS.items() if kind.instant} == {"alert", "batch"}
    assert {name for name, kind in KINDS.items() if kind.one_try} == {"test"}


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_each_kind_has_its_templates(name: str) -> None:
    root = templates_dir()
    if "slack" in TEMPLATES[name]:
        assert (root / "slack" / f"{name}.json.j2").is_file()
    if "email" in TEMPLATES[name]:
        for part in ("subject.txt", "txt", "html"):
            assert (root / "email" / f"{name}.{part}").is_file()
    assert not list(root.glob("*/digest.*"))  # "digest" is the daily one, named `daily`


def test_an_unknown_kind_fails_its_row_for_a_retry_rather_than_the_claim() -> None:
    kind = kind_of("weekly")  # say, a kind of a newer release, during a rolling upgrade
    assert isinstance(kind, Unknown) and kind.name == "weekly"
    assert kind.load(None, SimpleNamespace(id=1), {}) == Load([])  # type: ignore[arg-type]
    with pytest.raises(DeliveryError) as failed:
        kind.render(None, Message("slack", "C0X", {}, Load([]), NOW))  # type: ignore[arg-type]
    assert not failed.value.permanent and failed.value.retry_after is None


KIND_TESTS = [
    r"\bkind\s*(==|!=)\s*['\"]",  # kind == "daily"
    r"\bkind\s+(not\s+)?in\s*[(\[{]",  # kind in ("alert", "digest")
    r"\.kind\.in_\(",  # a query's DELIVERIES.c.kind.in_((…))
]


def test_no_code_outside_the_registry_tests_a_kind_string() -> None:
    found = []
    for path in BOT.rglob("*.py"):
        where = path.relative_to(BOT).parts
        # The registry itself, and settings, whose `kind` is a source's (file or http).
        if where[:2] == ("messages", "kinds") or where[0] in ("settings", "settings.py"):
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if "source.kind" not in line and any(re.search(p, line) for p in KIND_TESTS):
                found.append(f"{path.relative_to(BOT)}:{number}: {line.strip()}")
    for path in (templates_dir() / "email").iterdir():
        if re.search(r"\bkind\s*==", path.read_text()):
            found.append(f"templates/email/{path.name}")
    assert found == []


def items(count: int) -> list[Item]:
    return [Item(Story.model_validate(story(id=f"s{n}")), "why") for n in range(count)]


@pytest.mark.parametrize(("name", "subscription"), [
    ("alert", "instant action-item alerts"), ("batch", "instant action-item alerts"),
    ("daily", "the daily action-item digest"), ("test", "alertbot test messages")])
def test_each_email_says_which_subscription_it_is_sent_under(name: str,
                                                            subscription: str) -> None:
    extra = {"day": NOW.date(), "since": NOW} if name == "daily" else {}
    parts = render_parts(name, items(1 if name == "alert" else 2), **extra)
    because = f"is subscribed to {subscription} from alertbot."
    assert because in parts.html
    assert because in parts.text or name == "test"  # a test's text part has no footer


def test_times_reach_the_templates_as_datetimes_not_words() -> None:
    parsed = Story.model_validate(story(scored_at=NOW.isoformat()))
    assert item_context(Item(parsed, ""))["scored_at"] == NOW
    pending = SimpleNamespace(target="slack:C0X", status="pending", sent_at=None)
    assert story_context(parsed, [], [pending])["alerted"] == [
        {"where": "C0X", "status": "pending", "at": None}]


def test_readers_of_one_daily_digest_share_one_read_per_claim(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reads: list[Any] = []
    entry = SimpleNamespace(story_id="a")
    monkeypatch.setattr(daily_kind.outbox, "stories_of",
                        lambda db, details: reads.append(details) or [entry])
    owners: list[Any] = []  # each story's action-item state, read with its stories
    monkeypatch.setattr(daily_kind.outbox, "owners_of",
                        lambda db, ids: owners.append(ids) or {})
    same = {"stories": ["a", "b"]}
    rows = [SimpleNamespace(id=n, kind="daily", details=details)
            for n, details in enumerate([same, same, {"stories": ["c"]}, same])]
    loads = Dispatcher._load(None, rows)  # type: ignore[arg-type]
    assert len(reads) == 2 and [load.items for _, load in loads] == [[entry]] * 4
    assert owners == [["a"], ["a"]]  # once per distinct digest, like its stories
    Dispatcher._load(None, rows[:1])  # type: ignore[arg-type]
    assert len(reads) == 3  # a claim's reads are its own: the next claim reads anew


@pytest.fixture
async def desk(tmp_path: Path, sqlite_url: str, slack: FakeSlack,
               smtp: tuple[SmtpRecorder, int]) -> AsyncIterator[Desk]:
    clock = Clock()
    service = Service(desk_config(tmp_path, sqlite_url, slack, smtp[1]), clock)
    yield Desk(service, slack, smtp[0], clock)
    await service.close()


def item(story_id: str, **fields: Any) -> dict[str, Any]:
    return story(id=story_id, title=f"Title of {story_id}", **fields)


async def test_a_row_an_older_replica_stored_as_digest_goes_out_as_a_batch(desk: Desk) -> None:
    await desk.ingest(item("a"), item("b"), item("c"))
    [row] = await desk.deliveries()
    assert (row.kind, row.dedupe_key.split(":")[0]) == ("batch", "batch")
    await desk.service.db.write(lambda db: db.execute(text(
        "UPDATE deliveries SET kind = 'digest'")))  # as the previous release wrote it
    await desk.service.dispatcher.drain(timedelta(0))
    [post] = desk.slack.wait_for_posts(1)
    assert titles(post.body) == ["a", "b", "c"]
    assert desk.service.dispatcher.outcome.counts == {("batch", "sent"): 1}


async def test_a_test_message_reports_a_rate_limit_at_once(desk: Desk) -> None:
    desk.slack.fail_next("chat.postMessage", status=429, retry_after=30)
    row = await desk.service.send_test("slack", "C0SPACEOPS")
    assert (row.status, row.attempts) == ("dead", 1)  # not postponed behind the operator's back
    assert desk.service.dispatcher.outcome.counts == {("test", "dead"): 1}


def test_migration_0009_renames_stored_batches_and_keeps_their_keys(
    bare_database_url: str,
) -> None:
    database.upgrade(bare_database_url, "0008")
    engine = database.create(bare_database_url)
    t = "2026-11-20 07:00:00"
    with engine.begin() as db:
        for n, (kind, key) in enumerate([("digest", "digest:slack:C1:1-3"),
                                         ("alert", "alert:slack:C1:s1"),
                                         ("daily", "daily:ed@desk.example:2026-11-20")]):
            db.execute(text(
                "INSERT INTO deliveries (id, dedupe_key, transport, target, kind, reason, "
                "status, attempts, not_before, created_at) VALUES (:id, :key, 'slack', "
                "'slack:C1', :kind, 'why', 'sent', 1, :t, :t)"),
                {"id": n + 1, "key": key, "kind": kind, "t": t})
    engine.dispose()
    database.upgrade(bare_database_url)
    engine = database.create(bare_database_url)
    with engine.connect() as db:
        assert db.execute(text("SELECT kind, dedupe_key FROM deliveries ORDER BY id")).all() == [
            ("batch", "digest:slack:C1:1-3"), ("alert", "alert:slack:C1:s1"),
            ("daily", "daily:ed@desk.example:2026-11-20")]
    engine.dispose()


def test_a_confirmation_links_a_signed_expiring_token_and_offers_no_unsubscribe(
        tmp_path: Path) -> None:
    config = make_config(tmp_path, "sqlite://", public_url="https://alerts.desk.example/")
    renderer, expires = Renderer(config, b"key"), int(NOW.timestamp()) + 3600
    sent = [renderer.render("confirm", "email", "email:new@desk.example",
                            {"expires": expires}, Load([]), NOW) for _ in range(2)]
    links = [re.findall(r"https://alerts\.desk\.example/signup/confirm/([\w.-]+)",
                        m.get_body(("plain",)).get_content()) for m in sent]
    assert links[0] == links[1] and len(links[0]) == 1  # a retry sends the same link
    assert verify_confirm_token(b"key", links[0][0], NOW) == "new@desk.example"
    assert verify_confirm_token(b"key", links[0][0], NOW + timedelta(hours=1)) is None
    assert sent[0]["List-Unsubscribe"] is None and sent[0]["List-Unsubscribe-Post"] is None
    assert sent[0]["Auto-Submitted"] == "auto-generated"
    assert [p.get_content_type() for p in sent[0].iter_parts()] == ["text/plain", "text/html"]
    with pytest.raises(DeliveryError) as refused:
        renderer.render("confirm", "slack", "slack:C0X", {"expires": expires}, Load([]), NOW)
    assert refused.value.permanent
