"""Network peers for tests: a local server speaking the Slack Web API, and a real SMTP server.

The Slack fake follows the shape of slack_sdk's own mock server (a stdlib HTTP server in a
thread), but binds port 0, records every request with its parsed body and arrival time, and takes
scripted failures per method instead of magic tokens.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import socket
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class Call:
    method: str
    body: dict[str, Any]
    headers: dict[str, str]
    at: float  # time.monotonic() on arrival
    fault: str | None = None  # chaos: timeout, reset, 500 or 429 (nothing was posted)
    status: int = 200  # the HTTP status answered (0: no answer, a chaos timeout or reset)


@dataclass
class Scripted:
    status: int = 200
    error: str | None = None
    retry_after: float | None = None
    channel: str | None = None  # only a call to this channel (None: any call) meets it


def _take(scripted: deque[Scripted], body: dict[str, Any]) -> Scripted | None:
    """The first scripted answer meant for this call, taken out of the script."""
    for answer in scripted:
        if answer.channel is None or answer.channel == body.get("channel"):
            scripted.remove(answer)
            return answer
    return None


@dataclass
class FakeSlack:
    """A Slack Web API on 127.0.0.1: auth.test, chat.postMessage, chat.update, and friends."""

    delay: float = 0.0  # seconds each call takes, to widen windows in crash tests
    socket_url: str | None = None  # answer apps.connections.open with this (Socket Mode)
    calls: list[Call] = field(default_factory=list)
    _script: dict[str, deque[Scripted]] = field(default_factory=dict)
    _failing: dict[str, Scripted] = field(default_factory=dict)  # until stop_failing(method)
    _paused: dict[str, threading.Event] = field(default_factory=dict)  # until resume(method)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ts: int = 0
    _changed: threading.Condition = field(default_factory=threading.Condition)
    # Chaos: this share of chat.postMessage calls fail at random, each as a timeout (no answer
    # for `hang` seconds), a connection reset, HTTP 500 or HTTP 429 (Retry-After: 1).
    chaos: float = 0.0
    hang: float = 1.5
    rng: random.Random = field(default_factory=lambda: random.Random(5))
    # users.info per user ID: `tz` and `email` (Slack puts the email in `profile`, and only
    # with the users:read.email scope); anyone not listed lives in New York without an email.
    people: dict[str, dict[str, str]] = field(default_factory=dict)

    def start(self) -> FakeSlack:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body leave in one write, without Nagle: otherwise every reply waits
            # ~40 ms for the client's delayed ACK, a delay real Slack does not add.
            wbufsize = 65536
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                raw = self.rfile.read(length).decode()
                body = json.loads(raw) if raw.startswith("{") else dict(parse_qsl(raw))
                # Some methods carry their arguments in the query string, as slack_sdk sends them.
                path, _, query = self.path.strip("/").partition("?")
                body.update(parse_qsl(query))
                fault = fake._fault(path)
                if fault is not None:
                    fake._record(Call(path, body, dict(self.headers), time.monotonic(), fault,
                                      int(fault) if fault.isdigit() else 0))
                    if fault in ("timeout", "reset"):
                        if fault == "timeout":
                            time.sleep(fake.hang)
                        self.close_connection = True  # no answer at all
                        return
                    status, payload, headers = (
                        (500, {"ok": False, "error": "fatal_error"}, {}) if fault == "500"
                        else (429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"}))
                else:
                    status, payload, headers = fake._answer(path, body, dict(self.headers))
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST  # e.g. users.info: arguments in the query string

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail_next(self, method: str, times: int = 1, **scripted: Any) -> None:
        """Answer the next `times` calls to `method` with a failure (status, error, retry_after),
        or only the next calls to one `channel=`: calls in flight together reach Slack in any
        order, so a test failing one message among several names its channel."""
        with self._lock:
            self._script.setdefault(method, deque()).extend(
                Scripted(**scripted) for _ in range(times)
            )

    def keep_failing(self, method: str, **scripted: Any) -> None:
        """Answer every call to `method` with this failure until `stop_failing(method)`, so a
        test can look at the failing state for as long as it needs (after any `fail_next`)."""
        with self._lock:
            self._failing[method] = Scripted(**scripted)

    def stop_failing(self, method: str) -> None:
        """Calls to `method` answered from now on succeed (scripted `fail_next` aside)."""
        with self._lock:
            self._failing.pop(method, None)

    def pause(self, method: str) -> None:
        """Hold every call to `method` from now on, unanswered and not yet recorded, until
        `resume(method)`: the callers keep what they claimed in flight meanwhile. A call still
        held when its caller dies is recorded on resume, as if it had reached Slack."""
        with self._lock:
            self._paused.setdefault(method, threading.Event())

    def resume(self, method: str) -> None:
        """Let the held calls to `method` (and every later one) through."""
        with self._lock:
            gate = self._paused.pop(method, None)
        if gate is not None:
            gate.set()

    def _answer(self, method: str, body: dict[str, Any], headers: dict[str, str]
                ) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._lock:
            gate = self._paused.get(method)
        if gate is not None:
            gate.wait()
        if self.delay:
            time.sleep(self.delay)
        with self._lock:
            failure = _take(self._script.get(method, deque()), body) or self._failing.get(method)
            self._ts += 1
            ts = f"1700000000.{self._ts:06d}"
        self._record(Call(method, body, headers, time.monotonic(),
                          status=failure.status if failure is not None else 200))
        if failure is not None:
            extra = {"Retry-After": f"{failure.retry_after:g}"} if failure.retry_after else {}
            error = failure.error or ("ratelimited" if failure.status == 429 else "fatal_error")
            return failure.status, {"ok": False, "error": error}, extra
        if method == "auth.test":
            return 200, {"ok": True, "user_id": "UBOT", "team_id": "T1", "bot_id": "B1"}, {}
        if method == "apps.connections.open" and self.socket_url:
            return 200, {"ok": True, "url": self.socket_url}, {}
        if method == "users.info":
            person = self.people.get(str(body.get("user")), {})
            profile = {"email": person["email"]} if "email" in person else {}
            return 200, {"ok": True, "user": {"id": body.get("user"),
                                              "tz": person.get("tz", "America/New_York"),
                                              "profile": profile}}, {}
        if method in ("views.open", "views.publish", "views.update"):
            # Slack answers with the view as stored, under an id of its own.
            view = body.get("view")
            view = json.loads(view) if isinstance(view, str) else view
            return 200, {"ok": True, "view": {**(view or {}), "id": f"V{ts[-6:]}"}}, {}
        if method == "chat.unfurl":
            return 200, unfurl_answer(body), {}
        if method in ("chat.postMessage", "chat.update"):
            return 200, {"ok": True, "channel": body.get("channel"), "ts": body.get("ts", ts),
                         "message": {"text": body.get("text")}}, {}
        return 200, {"ok": True}, {}

    def _fault(self, method: str) -> str | None:
        if method != "chat.postMessage" or not self.chaos:
            return None
        with self._lock:
            if self.rng.random() >= self.chaos:
                return None
            return self.rng.choice(["timeout", "reset", "500", "429"])

    def _record(self, call: Call) -> None:
        with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    def posts(self, channel: str | None = None) -> list[Call]:
        """Successful-or-not chat.postMessage calls, optionally to one channel."""
        with self._lock:
            return [c for c in self.calls if c.method == "chat.postMessage"
                    and (channel is None or c.body.get("channel") == channel)]

    def unfurls(self) -> list[Call]:
        """Every chat.unfurl call, answered or not."""
        with self._lock:
            return [c for c in self.calls if c.method == "chat.unfurl"]

    def wait_for_posts(self, count: int, timeout: float = 10.0) -> list[Call]:
        """Block until at least `count` chat.postMessage calls arrived (an event, not a sleep)."""
        self.wait_for(lambda: len(self.posts()) >= count, timeout,
                      lambda: f"expected {count} posts, got {len(self.posts())}")
        return self.posts()

    def wait_for_call(self, method: str, timeout: float = 10.0) -> Call:
        """Block until a call to `method` (e.g. a response_url path) arrives; return it."""
        def found() -> list[Call]:
            with self._lock:
                return [c for c in self.calls if c.method == method]
        self.wait_for(lambda: bool(found()), timeout, lambda: f"no call to {method}")
        return found()[0]

    def wait_for(self, condition: Any, timeout: float, failure: Any) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(failure())
                self._changed.wait(left)


def unfurl_answer(body: dict[str, Any]) -> dict[str, Any]:
    """chat.unfurl as Slack checks it (https://docs.slack.dev/reference/methods/chat.unfurl):
    channel and ts together, or unfurl_id and source; `unfurls` a JSON map (a string when the
    call is form-encoded) of URL to blocks or an attachment. Errors come back as ok: false."""
    if not (body.get("unfurl_id") and body.get("source")):
        if not body.get("channel"):
            return {"ok": False, "error": "missing_channel"}
        if not body.get("ts"):
            return {"ok": False, "error": "missing_ts"}
    unfurls = body.get("unfurls")
    if unfurls is None:
        return {"ok": False, "error": "missing_unfurls"}
    if isinstance(unfurls, str):
        try:
            unfurls = json.loads(unfurls)
        except ValueError:
            return {"ok": False, "error": "invalid_unfurls_format"}
    if not isinstance(unfurls, dict) or not all(
            isinstance(url, str) and isinstance(shown, dict) for url, shown in unfurls.items()):
        return {"ok": False, "error": "invalid_unfurls_format"}
    for shown in unfurls.values():
        blocks = shown.get("blocks")
        if blocks is not None and not (isinstance(blocks, list) and blocks
                                       and all(isinstance(b, dict) for b in blocks)):
            return {"ok": False, "error": "cannot_parse_attachment"}
    return {"ok": True}


class SmtpRecorder:
    """An aiosmtpd handler that keeps every message and can refuse scripted recipients."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.refuse: dict[str, str] = {}  # address -> SMTP reply, for every attempt
        self.transient: dict[str, int] = {}  # address -> how many 451 replies before accepting
        self.connections = 0
        self.encrypted: list[bool] = []  # per message: did it arrive over TLS?
        self.logins: list[tuple[bytes, bytes]] = []
        # Chaos: this share of messages fail at random at DATA: 421 (and the server hangs up),
        # 451, or the connection dropped without a reply. `faults` counts each kind.
        self.chaos = 0.0
        self.rng = random.Random(7)
        self.faults: Counter[str] = Counter()
        self._arrived = threading.Condition()

    def wait_for_messages(self, count: int, timeout: float = 10.0) -> None:
        """Block until at least `count` messages were accepted (an event, not a sleep)."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.messages) >= count, timeout):
                raise AssertionError(f"expected {count} messages, got {len(self.messages)}")

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope,
                          hostname: str, responses: list[str]) -> list[str]:
        self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if address in self.refuse:
            return self.refuse[address]
        if self.transient.get(address, 0) > 0:
            self.transient[address] -= 1
            return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.chaos and self.rng.random() < self.chaos:
            fault = self.rng.choice(["421", "451", "drop"])
            self.faults[fault] += 1
            if fault == "drop":
                server.transport.close()  # mid-batch, no reply
                return "451 4.3.0 (never sent: the connection is gone)"
            if fault == "421":  # the reply goes out, then the server hangs up (RFC 5321 4.2.2)
                asyncio.get_running_loop().call_soon(server.transport.close)
                return "421 4.3.0 Service shutting down, closing transmission channel"
            return "451 4.3.0 Try again later"
        with self._arrived:
            self.messages.append((str(envelope.mail_from), list(envelope.rcpt_tos),
                                  bytes(envelope.content or b"")))
            self._arrived.notify_all()
        # session.ssl is set by STARTTLS only; implicit TLS shows on the transport.
        self.encrypted.append(server.transport.get_extra_info("ssl_object") is not None)
        return "250 Message accepted for delivery"


def authenticator(recorder: SmtpRecorder, password: bytes) -> Any:
    """An aiosmtpd authenticator that accepts one password and remembers every login."""
    from aiosmtpd.smtp import AuthResult, LoginPassword

    def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any
              ) -> AuthResult:
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        recorder.logins.append((data.login, data.password))
        # handled=False: aiosmtpd answers (235 or 535) itself.
        return AuthResult(success=data.password == password, handled=False)

    return check


def free_port() -> int:
    # aiosmtpd's Controller cannot bind port 0 (its readiness probe dials the port it was given).
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_smtp(recorder: SmtpRecorder) -> Controller:
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port())
    controller.start()
    return controller


def slack_signature(secret: str, timestamp: str, body: str) -> str:
    """Sign a request body exactly as Slack does (v0, HMAC-SHA256 over v0:ts:body)."""
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


class FakeSocketMode:
    """A local Socket Mode endpoint: says hello, sends envelopes, records what comes back.

    FakeSlack answers apps.connections.open with this server's URL when `socket_url` is set.
    """

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        self._socket: Any = None
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()

    def start(self) -> FakeSocketMode:
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(timeout=10)
        return self

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_get("/link", self._connection)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"ws://127.0.0.1:{self._runner.addresses[0][1]}/link"

    async def _connection(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        await socket.send_json({"type": "hello", "num_connections": 1,
                                "connection_info": {"app_id": "A1"}})
        self._socket = socket
        self._ready.set()
        async for message in socket:
            if message.type == WSMsgType.TEXT:
                with self._changed:
                    self.received.append(json.loads(message.data))
                    self._changed.notify_all()
        return socket

    def wait_connected(self, timeout: float = 10) -> None:
        if not self._ready.wait(timeout):
            raise AssertionError("the app never opened the Socket Mode connection")

    def send(self, envelope: dict[str, Any]) -> None:
        asyncio.run_coroutine_threadsafe(self._socket.send_json(envelope),
                                         self._loop).result(timeout=5)

    def wait_for_reply(self, envelope_id: str, timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for message in self.received:
                    if message.get("envelope_id") == envelope_id:
                        return message
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no reply to envelope {envelope_id}")
                self._changed.wait(left)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)


@dataclass
class FeedRequest:
    path: str
    since: str | None
    if_none_match: str | None
    at: float


@dataclass
class FakeFeed:
    """An upstream story feed on 127.0.0.1 (the `http` source's peer), one path per behaviour.

    `/feed` serves `stories` with `etag` (304 when the client already has it); `/broken`
    answers 500; `/hanging` never answers until the server stops.
    """

    stories: list[dict[str, Any]] = field(default_factory=list)
    etag: str = '"v1"'
    requests: list[FeedRequest] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _arrived: threading.Condition = field(default_factory=threading.Condition)

    def start(self) -> FakeFeed:
        feed = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                path, _, query = self.path.partition("?")
                since = dict(parse_qsl(query)).get("since")
                with feed._arrived:
                    feed.requests.append(FeedRequest(path, since,
                                                     self.headers.get("If-None-Match"),
                                                     time.monotonic()))
                    feed._arrived.notify_all()
                if path == "/hanging":
                    feed._stop.wait(60)
                    return
                if path == "/broken":
                    self._reply(500, b"upstream exploded")
                    return
                if self.headers.get("If-None-Match") == feed.etag:
                    self._reply(304, b"")
                    return
                self._reply(200, json.dumps(feed.stories).encode(), {"ETag": feed.etag})

            def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None
                       ) -> None:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def to(self, path: str) -> list[FeedRequest]:
        return [r for r in self.requests if r.path == path]

    def wait_for_requests(self, path: str, count: int, timeout: float) -> None:
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.to(path)) >= count, timeout):
                raise AssertionError(f"{path} was asked {len(self.to(path))} times, not {count}")

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
