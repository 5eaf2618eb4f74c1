"""Self sign-up with double opt-in, through the service's own HTTP app and loopback SMTP."""

from __future__ import annotations

import re
import tomllib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from starlette.applications import Starlette

from bot import db as database
from bot.readers import subscribers
from bot.readers.signup import confirm_token, expiry
from bot.readers.subscribers import preferences_token, unsubscribe_token
from bot.service import Service, serving
from tests.conftest import PostgresServer, new_pg_database
from tests.fakes import FakeSlack, SmtpRecorder
from tests.harness import Clock, Desk, desk_config
from tests.process import Alertbot

NEW = "new.reader@desk.example"
DESK = {"email": {"batch_window": "0s", "signup_domains": ["desk.example", "bureau.example"],
                  "signup_per_client": 3}}


async def _desk(tmp_path: Path, url: str, slack: FakeSlack, smtp: tuple[SmtpRecorder, int]
                ) -> AsyncIterator[Desk]:
    clock = Clock()
    clock.now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    service = Service(desk_config(tmp_path, url, slack, smtp[1], **DESK), clock)
    yield Desk(service, slack, smtp[0], clock)
    await service.close()


@pytest.fixture
async def desk(tmp_path: Path, sqlite_url: str, slack: FakeSlack,
               smtp: tuple[SmtpRecorder, int]) -> AsyncIterator[Desk]:
    async for made in _desk(tmp_path, sqlite_url, slack, smtp):
        yield made


@pytest.fixture
async def any_desk(tmp_path: Path, database_url: str, slack: FakeSlack,
                   smtp: tuple[SmtpRecorder, int]) -> AsyncIterator[Desk]:
    """On SQLite, then on a real PostgreSQL: the per-address limit is a query."""
    async for made in _desk(tmp_path, database_url, slack, smtp):
        yield made


def browser(service: Service, client: str = "192.0.2.10", app: Starlette | None = None
            ) -> httpx.AsyncClient:
    """A client of the app `alertbot run` serves (`serving.doors`), from address `client`;
    the per-client limits live in the app, so clients of one running service share `app`."""
    app = serving.doors(service)[0] if app is None else app
    transport = httpx.ASGITransport(app=app, client=(client, 40000))
    return httpx.AsyncClient(transport=transport, base_url="https://alerts.desk.example")


def csrf_of(page: httpx.Response) -> str:
    [token] = re.findall(r'name="csrf" value="([^"]+)"', page.text)
    return token


async def ask(client: httpx.AsyncClient, address: str) -> httpx.Response:
    """Fill the sign-up form as a person does: load it, then post it with its token."""
    form = await client.get("/signup")
    assert form.status_code == 200, form.text
    return await client.post("/signup", data={"email": address, "csrf": csrf_of(form)})


def text_of(message: EmailMessage) -> str:
    return message.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def confirm_path(message: EmailMessage) -> str:
    """The confirmation link's path, the same in the text part and the HTML part."""
    [url] = re.findall(r"https://\S+/signup/confirm/\S+", text_of(message))
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert f'href="{url}"' in html
    return urlsplit(url).path


async def stored(desk: Desk, address: str = NEW) -> subscribers.Subscriber | None:
    return await desk.service.db.read(subscribers.find, address)


async def confirmations(desk: Desk) -> list[Any]:
    return [row for row in await desk.deliveries() if row.kind == "confirm"]


async def test_one_email_and_only_the_confirm_pages_post_subscribes(desk: Desk,
                                                                    tmp_path: Path) -> None:
    async with browser(desk.service) as client:
        sent = await ask(client, "New.Reader@Desk.Example")
        assert sent.status_code == 200 and "Check your inbox" in sent.text
        await desk.service.check()
        [message] = desk.emails(NEW)
        assert len(desk.smtp.messages) == 1
        assert message["Subject"] == "Confirm your alertbot email subscription"
        assert message["Auto-Submitted"] == "auto-generated" and message["Message-ID"]
        assert message["List-Unsubscribe"] is None  # nothing to leave yet
        assert "Not you? Ignore this email" in text_of(message)
        path = confirm_path(message)
        assert await stored(desk) is None  # asked is not subscribed
        for _ in range(2):  # a link scanner's fetch, then the person's: neither subscribes
            page = await client.get(path)
            assert page.status_code == 200 and "Confirm your subscription" in page.text
        assert await stored(desk) is None
        refused = await client.post(path, data={"mode": "daily"})  # no page token
        assert refused.status_code == 400 and await stored(desk) is None
        done = await client.post(path, data={"csrf": csrf_of(page), "mode": "instant",
                                             "timezone": "Europe/Berlin"})
    assert done.status_code == 200 and "You are subscribed" in done.text
    reader = await stored(desk)
    assert reader is not None and (reader.mode, reader.timezone, reader.digest_hour) == (
        "instant", "Europe/Berlin", "07:00")
    key = desk.service.dispatcher.key
    [link] = re.findall(r'href="([^"]+)">Choose topics', done.text)
    assert str(done.url.join(link)) == (
        f"https://alerts.desk.example/preferences/{preferences_token(key, NEW)}")
    listed = Alertbot.make(tmp_path, "").cli("subscribers", "list")
    assert listed.returncode == 0 and NEW in listed.stdout and "instant" in listed.stdout
    [row] = await confirmations(desk)
    assert row.status == "sent" and row.target == f"email:{NEW}"


async def test_confirming_again_changes_nothing_the_reader_set(desk: Desk) -> None:
    key = desk.service.dispatcher.key
    path = f"/signup/confirm/{confirm_token(key, NEW, expiry(desk.clock()))}"
    async with browser(desk.service) as client:
        for mode, words in (("daily", "You are subscribed"),
                            ("instant", "You were already subscribed")):
            page = await client.get(path)
            done = await client.post(path, data={"csrf": csrf_of(page), "mode": mode})
            assert done.status_code == 200 and words in done.text
    reader = await stored(desk)
    assert reader is not None and reader.mode == "daily" and reader.timezone == "UTC"


async def test_an_address_already_subscribed_gets_no_email_and_the_same_page(desk: Desk
                                                                            ) -> None:
    await desk.subscribe(NEW)
    async with browser(desk.service) as client:
        again = await ask(client, NEW)
        fresh = await ask(client, "someone.else@desk.example")
    # the page does not tell a stranger who is subscribed
    assert again.text.replace(NEW, "X") == fresh.text.replace("someone.else@desk.example", "X")
    await desk.service.check()
    assert desk.emails(NEW) == [] and len(desk.emails("someone.else@desk.example")) == 1


@pytest.mark.parametrize(("given", "words"), [
    ("someone@elsewhere.example", "Only addresses at desk.example, bureau.example can sign up"),
    ("someone@sub.desk.example", "Only addresses at desk.example, bureau.example can sign up"),
    ("not an address", "That is not an email address"),
])
async def test_an_address_outside_the_domains_is_refused_on_the_form_and_nothing_is_sent(
        desk: Desk, given: str, words: str) -> None:
    async with browser(desk.service) as client:
        answer = await ask(client, given)
    assert answer.status_code == 400
    assert words in answer.text and "Nothing was sent" in answer.text
    assert 'aria-invalid="true"' in answer.text and f'value="{given}"' in answer.text
    assert csrf_of(answer)  # the form again, ready to correct
    await desk.service.check()
    assert await confirmations(desk) == [] and desk.smtp.messages == []


async def test_twenty_requests_for_one_address_in_a_minute_send_one_email(any_desk: Desk
                                                                         ) -> None:
    desk = any_desk
    for n in range(20):  # from twenty clients, so only the per-address limit is at work
        async with browser(desk.service, client=f"192.0.2.{n + 1}") as client:
            answer = await ask(client, NEW)
        assert answer.status_code == 200 and "Check your inbox" in answer.text
        desk.clock.advance(3)
    await desk.service.check()
    assert len(desk.emails(NEW)) == 1 and len(await confirmations(desk)) == 1
    desk.clock.advance(10 * 60)  # ten minutes after the first: one more may go
    async with browser(desk.service) as client:
        await ask(client, NEW)
    await desk.service.check()
    assert len(desk.emails(NEW)) == 2


async def test_an_address_gets_at_most_three_confirmations_a_day(any_desk: Desk) -> None:
    desk = any_desk
    for _ in range(6):
        async with browser(desk.service, client=f"192.0.2.{_ + 1}") as client:
            await ask(client, NEW)
        desk.clock.advance(11 * 60)
    await desk.service.check()
    assert len(desk.emails(NEW)) == 3


async def test_many_addresses_from_one_client_are_limited_per_hour(desk: Desk) -> None:
    app, _ = serving.doors(desk.service)
    async with browser(desk.service, app=app) as client:
        answers = [await ask(client, f"reader{n}@desk.example") for n in range(5)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]  # signup_per_client
    assert "Too many sign-up requests" in answers[3].text
    assert answers[3].headers["retry-after"] == "3600"
    async with browser(desk.service, client="192.0.2.99", app=app) as other:
        assert (await ask(other, "reader9@desk.example")).status_code == 200
    await desk.service.check()
    assert sorted(to for _, [to], _ in desk.smtp.messages) == [
        "reader0@desk.example", "reader1@desk.example", "reader2@desk.example",
        "reader9@desk.example"]


@pytest.mark.parametrize("forge", ["expired", "tampered", "another address", "unsubscribe token",
                                   "preferences token", "another domain", "garbage"])
async def test_a_bad_confirmation_link_shows_an_error_page_and_subscribes_no_one(
        desk: Desk, forge: str) -> None:
    key, now = desk.service.dispatcher.key, desk.clock()
    good = confirm_token(key, NEW, expiry(now))
    token = {
        "expired": good,
        "tampered": good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
        "another address": confirm_token(key, "x@desk.example", expiry(now)).split(".")[0]
        + "." + good.split(".", 1)[1],
        "unsubscribe token": unsubscribe_token(key, NEW),
        "preferences token": preferences_token(key, NEW),
        "another domain": confirm_token(key, "x@elsewhere.example", expiry(now)),
        "garbage": "not-a-token",
    }[forge]
    async with browser(desk.service) as client:
        page = await client.get(f"/signup/confirm/{good}")
        if forge == "expired":
            desk.clock.advance(48 * 3600)
        for method in ("GET", "POST"):
            answer = await client.request(method, f"/signup/confirm/{token}",
                                          data={"csrf": csrf_of(page), "mode": "daily"})
            assert answer.status_code == 400 and "This link is not valid" in answer.text
            [again] = re.findall(r'href="([^"]+)">Sign up again', answer.text)
            assert answer.url.join(again).path == "/signup"
    assert await desk.service.db.read(subscribers.listing) == []


@pytest.mark.parametrize("written", ["", "[email]\n", "[email]\nsignup_domains = []\n"])
async def test_without_sign_up_domains_there_is_no_sign_up_page(
        tmp_path: Path, sqlite_url: str, slack: FakeSlack, smtp: tuple[SmtpRecorder, int],
        written: str) -> None:
    config = desk_config(tmp_path, sqlite_url, slack, smtp[1], **tomllib.loads(written))
    service = Service(config, Clock())
    key = service.dispatcher.key
    async with browser(service) as client:
        for path in ("/signup", f"/signup/confirm/{confirm_token(key, NEW, 2**40)}"):
            assert (await client.get(path)).status_code == 404
            assert (await client.post(path, data={"email": NEW})).status_code == 404
    await service.close()
    assert smtp[0].messages == []


async def test_the_forms_label_every_control(desk: Desk) -> None:
    token = confirm_token(desk.service.dispatcher.key, NEW, expiry(desk.clock()))
    async with browser(desk.service) as client:
        pages = [(await client.get("/signup")).text,
                 (await client.get(f"/signup/confirm/{token}")).text]
    for page in pages:
        controls = re.findall(r'<(?:input|select)(?![^>]*type="hidden")[^>]*\bid="([^"]+)"',
                              page)
        assert controls and set(controls) == set(re.findall(r'<label for="([^"]+)"', page))


@pytest.mark.postgres
async def test_with_the_database_away_the_pages_say_try_again_and_nothing_is_sent(
        tmp_path: Path, slack: FakeSlack, smtp: tuple[SmtpRecorder, int]) -> None:
    server = PostgresServer().start()  # its own: the test stops it
    try:
        url = new_pg_database(server.url)
        database.upgrade(url)
        async for desk in _desk(tmp_path, url, slack, smtp):
            token = confirm_token(desk.service.dispatcher.key, NEW, expiry(desk.clock()))
            async with browser(desk.service) as client:
                form = await client.get("/signup")
                page = await client.get(f"/signup/confirm/{token}")
                server.stop()
                answers = [
                    await client.post("/signup", data={"email": NEW, "csrf": csrf_of(form)}),
                    await client.post(f"/signup/confirm/{token}",
                                      data={"csrf": csrf_of(page), "mode": "daily"})]
            for answer in answers:
                assert answer.status_code == 503 and answer.headers["retry-after"] == "5"
                assert "Please try again in a minute" in answer.text
    finally:
        server.remove()
    assert smtp[0].messages == []
