"""`/story` answers through a running service: one pooled connection to Slack's response_urls,
closed when the service stops (bot/slack_app/replies.py).

The service runs in process (its own thread and event loop), so that after it stops this test
can see whether it closed its connection, which a process that exits would close anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from bot import db as database
from bot.service import Service
from bot.stories.parsing import parse_batch
from tests.conftest import make_config, story
from tests.fakes import FakeSlack, free_port, slack_signature

SECRET = "signing-secret-for-answers"
TITLE = "Hypersonic glide vehicle test ends early over the Pacific"


class ResponseUrls:
    """Slack's response_url side on 127.0.0.1 (HTTP/1.1, keep-alive), noting each connection
    as it opens and closes, and each answer with the connection it came over."""

    def __init__(self) -> None:
        self.opened: list[tuple[str, int]] = []
        self.closed: list[tuple[str, int]] = []
        self.answers: dict[str, tuple[tuple[str, int], dict[str, Any]]] = {}
        self.changed = threading.Condition()
        urls = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                urls.note(lambda: urls.opened.append(self.client_address))

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
                urls.note(lambda: urls.answers.__setitem__(self.path, (self.client_address,
                                                                         body)))

            def finish(self) -> None:  # the client closed the connection (or we did)
                super().finish()
                urls.note(lambda: urls.closed.append(self.client_address))

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def note(self, change: Callable[[], None]) -> None:
        with self.changed:
            change()
            self.changed.notify_all()

    def wait(self, condition: Callable[[], bool], what: str) -> None:
        with self.changed:
            assert self.changed.wait_for(condition, 10), what

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Running:
    """`alertbot run`'s Service with its HTTP server, on a thread and event loop of its own."""

    def __init__(self, service: Service, stories: list[dict[str, Any]]) -> None:
        self.service = service
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(stories,))
        self.task: asyncio.Task[None] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def _run(self, stories: list[dict[str, Any]]) -> None:
        with contextlib.suppress(asyncio.CancelledError):  # how `stop` ends it
            asyncio.run(self._main(stories))

    async def _main(self, stories: list[dict[str, Any]]) -> None:
        self.loop, self.task = asyncio.get_running_loop(), asyncio.current_task()
        report = await self.service.pipeline.ingest(parse_batch(json.dumps(stories)), "test",
                                                    self.service.clock())
        assert not report.rejected
        self.ready.set()
        await self.service.run()

    def start(self, url: str) -> Running:
        self.thread.start()
        assert self.ready.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # wait for the port to answer, as tests/process.py
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.05)
        raise AssertionError("the service did not answer /healthz")

    def stop(self) -> None:
        """Stop as `alertbot run` does on SIGTERM: the serving task ends, its cleanup runs."""
        assert self.loop is not None and self.task is not None
        self.loop.call_soon_threadsafe(self.task.cancel)
        self.thread.join(30)
        assert not self.thread.is_alive()


@pytest.fixture()
def slack() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    yield fake
    fake.stop()


@pytest.fixture()
def response_urls() -> Iterator[ResponseUrls]:
    urls = ResponseUrls()
    yield urls
    urls.stop()


def signed_post(url: str, form: dict[str, str]) -> httpx.Response:
    body = urlencode(form)
    timestamp = str(int(time.time()))
    headers = {"Content-Type": "application/x-www-form-urlencoded",
               "X-Slack-Request-Timestamp": timestamp,
               "X-Slack-Signature": slack_signature(SECRET, timestamp, body)}
    return httpx.post(f"{url}/slack/events", content=body, headers=headers, timeout=10)


def test_story_answers_share_one_connection_which_the_service_closes_when_it_stops(
    tmp_path: Path, slack: FakeSlack, response_urls: ResponseUrls,
) -> None:
    url = f"sqlite:///{tmp_path / 'alertbot.db'}"
    database.upgrade(url)
    port = free_port()
    config = make_config(tmp_path, url, {"slack": {"routes": []}}, http_port=port,
                         slack_bot_token="xoxb-test", slack_api_url=slack.url,
                         slack_signing_secret=SECRET)
    stories = [story(id="hgv-test", title=TITLE, impact=9),
               story(id="hgv-budget", title="Hypersonic budget line trimmed", impact=7)]
    running = Running(Service(config), stories).start(f"http://127.0.0.1:{port}")
    try:
        asked = [("by-id", "hgv-test"), ("by-words", "hypersonic"), ("nothing", "zzqx")]
        for path, text in asked:  # one after another: each answer may reuse the connection
            ack = signed_post(f"http://127.0.0.1:{port}", {
                "command": "/story", "text": text, "team_id": "T1", "channel_id": "C0X",
                "user_id": "U1", "response_url": f"{response_urls.url}/{path}",
                "trigger_id": "1.2.3"})
            assert ack.status_code == 200 and ack.content == b""  # acked empty, at once
            response_urls.wait(lambda p=path: f"/{p}" in response_urls.answers,  # type: ignore[misc]
                               f"no answer at /{path}")
    finally:
        running.stop()
    answers = {path: body for path, (_, body) in response_urls.answers.items()}
    # The same answers as ever: the story, the choices, none; ephemeral, as Bolt's respond().
    assert all(body["response_type"] == "ephemeral" for body in answers.values())
    assert TITLE in json.dumps(answers["/by-id"]["blocks"])
    assert "Hypersonic budget line trimmed" in json.dumps(answers["/by-words"]["blocks"])
    assert "zzqx" in answers["/nothing"]["text"]
    # Answers reuse a pooled connection, and the service closed it when it stopped (this
    # process lives on, so nothing else would have). Not exactly one: the server notes an
    # answer before the client has read its response and put the connection back, so under
    # load the next answer may find it still busy and open a second one (seen in CI).
    connections = {address for address, _ in response_urls.answers.values()}
    assert len(connections) < len(asked) and sorted(response_urls.opened) == sorted(connections)
    response_urls.wait(lambda: sorted(response_urls.closed) == sorted(response_urls.opened),
                       "the answers' connection was left open after the service stopped")
