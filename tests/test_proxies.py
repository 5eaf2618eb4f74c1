"""The public pages' per-client limits behind a proxy: X-Forwarded-For is believed only from
the hops named in ALERTBOT_TRUSTED_PROXIES (bot/web/limits.py)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from ipaddress import ip_network
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request

from bot.readers.subscribers import unsubscribe_token
from bot.service import Service, serving
from bot.web.limits import HOUR, ClientLimit
from tests.conftest import make_config
from tests.fakes import SmtpRecorder
from tests.harness import Clock
from tests.process import Alertbot
from tests.test_signup import DESK, ask

PROXY = "10.1.2.3"

Make = Callable[..., Service]


@pytest.fixture
def make(tmp_path: Path, sqlite_url: str, smtp: tuple[SmtpRecorder, int]) -> Make:
    def build(trusted_proxies: str = "") -> Service:
        config = make_config(tmp_path, sqlite_url, DESK, smtp_host="127.0.0.1",
                             smtp_port=smtp[1], smtp_security="none",
                             trusted_proxies=trusted_proxies)
        return Service(config, Clock())
    return build


def via(app: Starlette, peer: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))
    return httpx.AsyncClient(transport=transport, base_url="https://alerts.desk.example")


async def codes(service: Service, peer: str, forwarded: list[str]) -> list[int]:
    """Ask for a sign-up once per X-Forwarded-For value, each from `peer`, in one app (the
    limits live in it, as in a running service)."""
    found = []
    app, _ = serving.doors(service)
    async with via(app, peer) as client:
        for n, value in enumerate(forwarded):
            client.headers["X-Forwarded-For"] = value
            found.append((await ask(client, f"reader{n}@desk.example")).status_code)
    return found


async def test_without_trusted_proxies_the_header_is_not_believed(make: Make) -> None:
    service = make()
    try:
        # Behind an undeclared proxy every request is the proxy's: one client, limited at 3.
        assert await codes(service, PROXY, [f"198.51.100.{n}" for n in range(5)]) == [
            200, 200, 200, 429, 429]
    finally:
        await service.close()


async def test_from_a_trusted_proxy_each_forwarded_client_counts_alone(make: Make) -> None:
    service = make(trusted_proxies="10.0.0.0/8, 192.168.7.1")
    try:
        assert await codes(service, PROXY, [f"198.51.100.{n}" for n in range(5)]) == [200] * 5
        # One reader through two trusted hops (a CDN, then the load balancer): still the reader.
        chained = ["198.51.100.77, 192.168.7.1"] * 4
        assert await codes(service, PROXY, chained) == [200, 200, 200, 429]
        # A client that writes its own header first cannot pick its address: the proxy appends
        # the one it saw, and that is the one counted.
        forged = [f"203.0.113.{n}, 198.51.100.99" for n in range(4)]
        assert await codes(service, PROXY, forged) == [200, 200, 200, 429]
        # Sent straight to the service, not through a trusted proxy: the header is ignored.
        direct = [f"203.0.113.{n}" for n in range(4)]
        assert await codes(service, "192.0.2.50", direct) == [200, 200, 200, 429]
    finally:
        await service.close()


async def test_the_page_limit_counts_the_forwarded_client_too(make: Make) -> None:
    service = make(trusted_proxies="10.0.0.0/8")
    path = f"/unsubscribe/{unsubscribe_token(b'x', 'a@desk.example')}"
    app, _ = serving.doors(service)
    try:
        async with via(app, PROXY) as client:
            client.headers["X-Forwarded-For"] = "198.51.100.1"
            seen = [(await client.get(path)).status_code for _ in range(31)]
            client.headers["X-Forwarded-For"] = "198.51.100.2"
            other = (await client.get(path)).status_code
        assert seen[29:] == [400, 429] and other == 400  # 400: the token is not this key's
    finally:
        await service.close()


def test_alertbot_run_behind_a_proxy_signs_up_and_limits_by_forwarded_client(
        tmp_path: Path, smtp: tuple[SmtpRecorder, int]) -> None:
    """The settings as an operator writes them: the TOML file and the environment."""
    recorder, port = smtp
    toml = ('[email]\nsignup_domains = ["desk.example"]  # the newsroom\n'
            'signup_per_client = 2\n')
    bot = Alertbot.make(tmp_path, toml, SMTP_HOST="127.0.0.1", SMTP_PORT=str(port),
                        SMTP_SECURITY="none", EMAIL_FROM="Desk <alerts@desk.example>",
                        ALERTBOT_TRUSTED_PROXIES="127.0.0.1/32")
    bot.env["ALERTBOT_PUBLIC_URL"] = bot.url
    bot.start()
    try:
        def sign_up(address: str, reader: str) -> httpx.Response:
            with httpx.Client(base_url=bot.url, headers={"X-Forwarded-For": reader}) as web:
                form = web.get("/signup")
                [csrf] = re.findall(r'name="csrf" value="([^"]+)"', form.text)
                return web.post("/signup", data={"email": address, "csrf": csrf})

        answers = [sign_up(f"r{n}@desk.example", "198.51.100.5").status_code for n in range(3)]
        assert answers == [200, 200, 429]
        assert sign_up("new@desk.example", "198.51.100.6").status_code == 200
        recorder.wait_for_messages(3)
        [message] = [m for _, [to], m in recorder.messages if to == "new@desk.example"]
        link = re.search(rb"http://\S+/signup/confirm/[\w.-]+", message)
        assert link is not None
        with httpx.Client() as web:
            page = web.get(link[0].decode())
            [csrf] = re.findall(r'name="csrf" value="([^"]+)"', page.text)
            assert "You are subscribed" in web.post(link[0].decode(), data={"csrf": csrf,
                                                                         "mode": "daily"}).text
        listed = json.loads(bot.cli("subscribers", "list", "--json").stdout)
        assert [row["email"] for row in listed] == ["new@desk.example"]
    finally:
        bot.stop()


@pytest.mark.parametrize(("toml", "env", "named"), [
    ('[email]\nsignup_domains = ["desk.example", "not a domain"]\n', "",
     "email.signup_domains: 'not a domain' is not a mail domain"),
    ("", "10.0.0.0/33", "ALERTBOT_TRUSTED_PROXIES: '10.0.0.0/33' is not an IP address"),
])
def test_a_bad_sign_up_or_proxy_setting_is_refused_by_name(tmp_path: Path, toml: str,
                                                           env: str, named: str) -> None:
    bot = Alertbot.make(tmp_path, toml, ALERTBOT_TRUSTED_PROXIES=env)
    checked = bot.cli("config", "check")
    assert checked.returncode != 0 and named in checked.stderr


def test_a_clients_hourly_allowance_comes_back_an_hour_after_its_first_use() -> None:
    now = [1000.0]
    limit = ClientLimit(3, clock=lambda: now[0], proxies=(ip_network("10.0.0.0/8"),),
                        window=HOUR)

    def asked(peer: str, forwarded: str = "") -> bool:
        headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
        return limit.allow(Request({"type": "http", "client": (peer, 1), "headers": headers}))

    assert [asked(PROXY, "198.51.100.1") for _ in range(4)] == [True, True, True, False]
    assert not asked("198.51.100.1")  # the same reader, come straight: the same client
    assert asked(PROXY, "198.51.100.2")  # another reader behind the same proxy
    now[0] += HOUR - 1
    assert not asked(PROXY, "198.51.100.1")
    now[0] += 1
    assert asked(PROXY, "198.51.100.1")
