"""Counting sinks for comparing alerting systems: a Slack endpoint and an SMTP server.

Each sink runs in a process of its own, so its work is not charged to the benchmark's process
and a slow benchmark loop cannot delay an arrival's timestamp. A sink finds alert ids in what
arrives (a regular expression over the decoded text) and keeps, per id, the first arrival
time as `time.monotonic()`, which on Linux is one clock for every process (CLOCK_MONOTONIC),
so the benchmark can subtract its own send times from it.

The Slack sink answers both what alertbot sends (Web API `chat.postMessage`, JSON or form) and
what Alertmanager sends to a `slack_configs` `api_url` (incoming-webhook JSON). The benchmark
drives a sink through a pipe: reset, wait for N ids (or one id), read what arrived.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import multiprocessing
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from multiprocessing.connection import Connection
from typing import Any, cast
from urllib.parse import unquote_plus

# Ids look like `VS03-000123`: a run prefix (so a late arrival from an earlier run is never
# counted in a later one) and a serial number.
ID = re.compile(r"\b(VS\d{2})-\d{6}\b")
BACKLOG = 4096  # Alertmanager opens a connection per alert in flight: thousands at once


@dataclass
class Arrivals:
    """What a sink received since its last reset; shared by its server and its control thread."""

    first: dict[str, float] = field(default_factory=dict)  # id -> first arrival
    messages: Counter[str] = field(default_factory=Counter)  # run prefix -> messages
    repeats: Counter[str] = field(default_factory=Counter)  # run prefix -> ids seen again
    without_id: int = 0  # messages naming no id (e.g. a test message): counted, not timed
    channels: dict[str, set[str]] = field(default_factory=dict)  # run prefix -> channels
    changed: threading.Condition = field(default_factory=threading.Condition)

    def record(self, text: str, at: float, channel: str | None = None) -> None:
        ids = {found.group(0) for found in ID.finditer(text)}
        with self.changed:
            if not ids:
                self.without_id += 1
            prefixes = {alert_id[:4] for alert_id in ids}
            for prefix in prefixes:
                self.messages[prefix] += 1
                if channel:
                    self.channels.setdefault(prefix, set()).add(channel)
            for alert_id in ids:
                if alert_id in self.first:
                    self.repeats[alert_id[:4]] += 1
                else:
                    self.first[alert_id] = at
            self.changed.notify_all()

    def count(self, prefix: str) -> int:
        return sum(1 for alert_id in self.first if alert_id.startswith(prefix))

    def snapshot(self, prefix: str) -> dict[str, Any]:
        with self.changed:
            return {"first": {k: v for k, v in self.first.items() if k.startswith(prefix)},
                    "messages": self.messages[prefix], "repeats": self.repeats[prefix],
                    "without_id": self.without_id,
                    "channels": len(self.channels.get(prefix, ()))}

    def reset(self) -> None:
        with self.changed:
            self.first.clear()
            self.messages.clear()
            self.repeats.clear()
            self.channels.clear()
            self.without_id = 0


def control(arrivals: Arrivals, pipe: Connection) -> None:
    """Answer the benchmark's commands, one at a time, until the pipe closes."""
    while True:
        try:
            command, *args = pipe.recv()
        except EOFError:
            return
        if command == "reset":
            arrivals.reset()
            pipe.send(True)
        elif command == "wait":
            # Until `count` ids of the run arrived, or nothing new came for `idle` seconds (a
            # system that lost alerts would otherwise hold the benchmark until `cap`).
            prefix, count, idle, cap = args
            deadline = time.monotonic() + cap
            with arrivals.changed:
                seen, quiet_since = arrivals.count(prefix), time.monotonic()
                while seen < count:
                    now = time.monotonic()
                    left = min(deadline - now, quiet_since + idle - now)
                    if left <= 0:
                        break
                    arrivals.changed.wait(left)
                    if (now_seen := arrivals.count(prefix)) != seen:
                        seen, quiet_since = now_seen, time.monotonic()
            pipe.send(arrivals.snapshot(prefix))
        elif command == "wait_id":
            wanted, timeout = args
            with arrivals.changed:
                arrivals.changed.wait_for(partial(arrivals.first.__contains__, wanted), timeout)
                pipe.send(arrivals.first.get(wanted))
        else:
            pipe.send(None)


def fast_loop() -> asyncio.AbstractEventLoop:
    """uvloop (as `alertbot run` uses): a sink's cost per message, its own CPU, is then a
    small share of what it measures even when a new connection brings each message."""
    import uvloop

    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    return loop


def slack_sink(port: int, pipe: Connection, ready: Any) -> None:
    """Slack: `chat.postMessage` (alertbot) and webhook JSON (Alertmanager), always ok."""
    from aiohttp import web

    arrivals = Arrivals()
    threading.Thread(target=control, args=(arrivals, pipe), daemon=True).start()
    serial = iter(range(1, 1 << 62))

    async def answer(request: web.Request) -> web.Response:
        raw = (await request.read()).decode(errors="replace")
        at = time.monotonic()
        channel = None
        if raw.startswith("{"):
            try:
                body = json.loads(raw)
                channel = str(body.get("channel") or "") or None
            except ValueError:
                pass
        elif "=" in raw:  # slack_sdk's form encoding: ids survive it, but decode anyway
            raw = unquote_plus(raw)
        if request.path.endswith("chat.postMessage"):
            arrivals.record(raw, at, channel)
        # Alertmanager 0.25 checks only the status code; alertbot reads Web API fields.
        return web.json_response({"ok": True, "channel": channel or "C0",
                                   "ts": f"1700000000.{next(serial):06d}"})

    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", answer)
    ready.set()
    web.run_app(app, host="127.0.0.1", port=port, backlog=BACKLOG, print=None,
                access_log=None, handle_signals=False, loop=fast_loop())


def email_text(raw: bytes) -> str:
    """The text of an email to look for ids in."""
    # Fast path, so that the sink stays far quicker than what it measures: the raw bytes, less
    # quoted-printable soft line breaks (which can split an id).
    text = raw.replace(b"=\r\n", b"").replace(b"=\n", b"").decode(errors="replace")
    if ID.search(text):
        return text
    # e.g. base64 bodies: decode every part.
    message = email.message_from_bytes(raw, policy=email.policy.default)
    texts = [str(message.get("subject", ""))]
    for part in message.walk():
        if not part.is_multipart():
            decoded = part.get_content()
            texts.append(decoded if isinstance(decoded, str) else "")
    return "\n".join(texts)


class LeanSmtp(asyncio.Protocol):
    """Just enough SMTP for a relay that accepts everything (RFC 5321 without extensions
    beyond 8BITMIME and SIZE), reading DATA in bulk.

    Alertmanager opens a new connection for every email; aiosmtpd spent ~3 ms of CPU on each
    (a coroutine step per line of the body), so with thousands at once the sink, on the same two
    cores, would have set Alertmanager's pace. This costs a fraction of that.
    """

    def __init__(self, arrived: Any) -> None:
        self.arrived = arrived  # called with each message's bytes and its arrival time
        self.buffer = bytearray()
        self.in_data = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(b"220 sink.bench ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            if self.in_data:
                # The body ends with CRLF.CRLF; the CRLF before the dot is the body's own.
                if self.buffer.startswith(b".\r\n"):
                    end, content = 0, b""
                else:
                    end = self.buffer.find(b"\r\n.\r\n")
                    if end < 0:
                        return
                    content, end = bytes(self.buffer[: end + 2]), end + 2
                del self.buffer[: end + 3]
                self.in_data = False
                self.arrived(content, time.monotonic())
                self.transport.write(b"250 2.0.0 OK\r\n")
                continue
            eol = self.buffer.find(b"\r\n")
            if eol < 0:
                return
            verb = bytes(self.buffer[:4]).upper()
            del self.buffer[: eol + 2]
            if verb == b"EHLO":
                self.transport.write(b"250-sink.bench\r\n250-8BITMIME\r\n250 SIZE 67108864\r\n")
            elif verb in (b"HELO", b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                self.transport.write(b"250 OK\r\n")
            elif verb == b"DATA":
                self.in_data = True
                self.transport.write(b"354 End data with <CR><LF>.<CR><LF>\r\n")
            elif verb == b"QUIT":
                self.transport.write(b"221 Bye\r\n")
                self.transport.close()
                return
            else:
                self.transport.write(b"502 5.5.2 Command not implemented\r\n")


def smtp_sink(port: int, pipe: Connection, ready: Any) -> None:
    """SMTP: accepts every message; ids are read from its text (`email_text`)."""
    arrivals = Arrivals()
    threading.Thread(target=control, args=(arrivals, pipe), daemon=True).start()

    def arrived(content: bytes, at: float) -> None:
        arrivals.record(email_text(content), at)

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: LeanSmtp(arrived), host="127.0.0.1",
                                          port=port, backlog=BACKLOG)
        ready.set()
        await server.serve_forever()

    fast_loop().run_until_complete(serve())


def aiosmtpd_sink(port: int, pipe: Connection, ready: Any) -> None:
    """The same as `smtp_sink` on aiosmtpd (as tests/fakes.py uses), to check the lean one
    against: `bench/vs_alertmanager.py --aiosmtpd`."""
    from aiosmtpd.smtp import SMTP, Envelope, Session

    arrivals = Arrivals()
    threading.Thread(target=control, args=(arrivals, pipe), daemon=True).start()

    class Handler:
        async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
            at = time.monotonic()
            content = envelope.content or b""
            arrivals.record(email_text(content if isinstance(content, bytes)
                                       else content.encode()), at)
            return "250 OK"

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        # Our own listener rather than aiosmtpd's Controller, for a deep accept backlog.
        server = await loop.create_server(lambda: SMTP(Handler(), hostname="sink.bench"),
                                          host="127.0.0.1", port=port, backlog=BACKLOG)
        ready.set()
        await server.serve_forever()

    fast_loop().run_until_complete(serve())


@dataclass
class Sink:
    """The benchmark's handle on a sink process."""

    process: multiprocessing.Process
    pipe: Connection
    port: int

    @classmethod
    def start(cls, target: Any, port: int) -> Sink:
        ours, theirs = multiprocessing.Pipe()
        ready = multiprocessing.Event()
        process = multiprocessing.Process(target=target, args=(port, theirs, ready),
                                          daemon=True)
        process.start()
        if not ready.wait(20):
            raise RuntimeError(f"{target.__name__} did not start")
        sink = cls(process, ours, port)
        sink.wait_listening()
        return sink

    def wait_listening(self) -> None:
        import socket

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"nothing listens on port {self.port}")

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    def call(self, *command: Any) -> Any:
        self.pipe.send(command)
        return self.pipe.recv()

    def reset(self) -> None:
        self.call("reset")

    def wait(self, prefix: str, count: int, idle: float = 30, cap: float = 900
             ) -> dict[str, Any]:
        return dict(self.call("wait", prefix, count, idle, cap))

    def wait_id(self, alert_id: str, timeout: float = 10) -> float | None:
        at = self.call("wait_id", alert_id, timeout)
        return float(at) if at is not None else None

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(10)
