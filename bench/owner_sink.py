"""A Slack Web API sink for the action-item benchmark (bench/claims.py), in a process of its own.

It answers what alertbot calls (auth.test, chat.postMessage, chat.update, response_url posts)
with `ok`, giving each posted message a ts of its own, and keeps:
- each alert posted (a top-level chat.postMessage): its story id, channel and ts, so a press
  can carry the message it was pressed on, as Slack's does;
- per posted message, the first `chat.update` whose blocks show the owner ("Claimed by <@…>"),
  and the first thread reply (chat.postMessage with that `thread_ts`) saying so, each with its
  arrival time as `time.monotonic()` (one clock for every process on Linux);
- how many chat.update calls came in all, how many response_url posts (refusals), and how
  many posts named several stories (a batch: the benchmark wants one alert per story).
The benchmark drives it through a pipe with `Sink.call` (bench/sinks.py): "reset", "wait".
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from bench.sinks import fast_loop

STORY = re.compile(r"\bclaims-\d{2}-\d{5}\b")
OWNER = "Claimed by <@"  # templates/slack/parts/owner_line.j2, for a claim
Message = tuple[str, str]  # (channel, ts)


@dataclass
class Seen:
    posted: dict[str, list[Message]] = field(default_factory=dict)  # story id -> messages
    edited: dict[Message, float] = field(default_factory=dict)  # first edit showing the owner
    replied: dict[Message, float] = field(default_factory=dict)  # first thread line saying so
    updates: int = 0  # every chat.update, owner shown or not
    responses: int = 0  # posts to a response_url: a press answered (refused or failed)
    batched: int = 0  # posts naming several stories: the benchmark wants one alert each
    changed: threading.Condition = field(default_factory=threading.Condition)

    def count(self, what: str) -> int:
        if what == "posted":
            return sum(len(messages) for messages in self.posted.values())
        return len(self.edited if what == "edited" else self.replied)

    def snapshot(self) -> dict[str, Any]:
        return {"posted": {k: list(v) for k, v in self.posted.items()},
                "edited": dict(self.edited), "replied": dict(self.replied),
                "updates": self.updates, "responses": self.responses,
                "batched": self.batched}

    def reset(self) -> None:
        with self.changed:
            self.posted.clear()
            self.edited.clear()
            self.replied.clear()
            self.updates = self.responses = self.batched = 0


def control(seen: Seen, pipe: Connection) -> None:
    """Answer the benchmark's commands, one at a time, until the pipe closes."""
    while True:
        try:
            command, *args = pipe.recv()
        except EOFError:
            return
        if command == "reset":
            seen.reset()
            pipe.send(True)
        elif command == "wait":
            # Until `count` of `what` arrived, or nothing new came for `idle` seconds (a lost
            # message would otherwise hold the benchmark until `cap`).
            what, count, idle, cap = args
            deadline = time.monotonic() + cap
            with seen.changed:
                now_seen, quiet_since = seen.count(what), time.monotonic()
                while now_seen < count:
                    now = time.monotonic()
                    left = min(deadline - now, quiet_since + idle - now)
                    if left <= 0:
                        break
                    seen.changed.wait(left)
                    if (counted := seen.count(what)) != now_seen:
                        now_seen, quiet_since = counted, time.monotonic()
                pipe.send(seen.snapshot())
        else:
            pipe.send(None)


def owner_sink(port: int, pipe: Connection, ready: Any) -> None:
    from aiohttp import web

    seen = Seen()
    threading.Thread(target=control, args=(seen, pipe), daemon=True).start()
    serial = iter(range(1, 1 << 62))

    async def answer(request: web.Request) -> web.Response:
        raw = await request.read()
        at = time.monotonic()
        method = request.path.rsplit("/", 1)[-1]
        if "/response/" in request.path:
            with seen.changed:
                seen.responses += 1
                seen.changed.notify_all()
            return web.json_response({"ok": True})
        if method == "auth.test":
            return web.json_response({"ok": True, "user_id": "UBOT", "team_id": "T0BENCH",
                                      "bot_id": "B0BENCH"})
        try:
            body = json.loads(raw) if raw.startswith(b"{") else {}
        except ValueError:
            body = {}
        channel = str(body.get("channel") or "C0")
        ts = str(body.get("ts") or f"1700000000.{next(serial):06d}")
        shows_owner = OWNER in json.dumps(body.get("blocks") or body.get("text") or "",
                                          ensure_ascii=False)
        with seen.changed:
            if method == "chat.update":
                seen.updates += 1
                if shows_owner:
                    seen.edited.setdefault((channel, ts), at)
            elif method == "chat.postMessage":
                if body.get("thread_ts"):
                    if shows_owner:
                        seen.replied.setdefault((channel, str(body["thread_ts"])), at)
                else:
                    named = set(STORY.findall(raw.decode(errors="replace")))
                    seen.batched += len(named) > 1
                    for story in named:
                        seen.posted.setdefault(story, []).append((channel, ts))
            seen.changed.notify_all()
        return web.json_response({"ok": True, "channel": channel, "ts": ts})

    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", answer)
    ready.set()
    web.run_app(app, host="127.0.0.1", port=port, backlog=4096, print=None, access_log=None,
                handle_signals=False, loop=fast_loop())
