"""The Slack transport's HTTP/1.1 client against a real aiohttp server: every way an answer's
body may be framed, kept-alive connections reused, one closed while idle not reused (a call
whose connection drops is retried once: tests/test_faults.py)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from bot.transports import DeliveryError
from bot.transports.slack import SlackTransport

Served = tuple[str, list[tuple[str, dict[str, object]]], set[int]]


@pytest.fixture
async def server() -> AsyncIterator[Served]:
    """A local server answering chat.postMessage as `framing` in the body asks."""
    calls: list[tuple[str, dict[str, object]]] = []
    peers: set[int] = set()

    async def post(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        calls.append((request.match_info["method"], body))
        peers.add(request.transport.get_extra_info("peername")[1])  # type: ignore[union-attr]
        answer = json.dumps({"ok": body.get("text") != "refuse", "ts": f"1.{len(calls)}",
                             **({"error": "channel_not_found"}
                                if body.get("text") == "refuse" else {})}).encode()
        framing = body.get("framing")
        if framing == "echo":  # as chat.postMessage does: the message posted, in the answer
            return web.Response(body=json.dumps({"ok": True, "ts": f"1.{len(calls)}",
                                                 "message": {"text": body["text"]}}).encode(),
                                content_type="application/json")
        if framing == "chunked":
            response = web.StreamResponse()
            response.enable_chunked_encoding()
            await response.prepare(request)
            for start in range(0, len(answer), 7):
                await response.write(answer[start : start + 7])
            await response.write_eof()
            return response
        if framing == "close":  # no length: the body ends when the connection does
            response = web.StreamResponse(headers={"Connection": "close"})
            response.force_close()
            await response.prepare(request)
            await response.write(answer)
            await response.write_eof()
            return response
        if framing == "429":
            return web.Response(status=429, headers={"Retry-After": "7"},
                                body=b'{"ok": false, "error": "ratelimited"}')
        return web.Response(body=answer, content_type="application/json")

    app = web.Application()
    app.router.add_post("/api/{method}", post)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/api/", calls, peers
    await runner.cleanup()


async def test_answers_framed_every_way_are_read_and_connections_reused(server: Served) -> None:
    url, calls, peers = server
    slack = SlackTransport("xoxb-t", url, timeout=5)
    try:
        for n, framing in enumerate(["length", "chunked", "close", "length", "length"]):
            ts = await slack.send([("chat.postMessage",
                                    {"channel": "C1", "text": f"m{n}", "framing": framing})])
            assert ts == f"1.{n + 1}"
        with pytest.raises(DeliveryError) as refused:
            await slack.send([("chat.postMessage", {"channel": "C1", "text": "refuse"})])
        assert refused.value.permanent and "channel_not_found" in str(refused.value)
        with pytest.raises(DeliveryError) as limited:
            await slack.send([("chat.postMessage", {"channel": "C1", "framing": "429"})])
        assert limited.value.retry_after == 7
    finally:
        await slack.close()
    assert [body["text"] for _, body in calls[:5]] == ["m0", "m1", "m2", "m3", "m4"]
    # One connection for the first three (the third closed it), a second for the rest.
    assert len(peers) == 2


async def test_a_kept_alive_connection_closed_while_idle_is_not_reused(server: Served) -> None:
    url, calls, peers = server
    slack = SlackTransport("xoxb-t", url, timeout=5)
    try:
        await slack.send([("chat.postMessage", {"channel": "C1", "text": "a"})])
        for _, writer in slack._client._idle:  # the connection breaks while idle
            writer.transport.abort()
        await slack.send([("chat.postMessage", {"channel": "C1", "text": "b"})])
    finally:
        await slack.close()
    assert [body["text"] for _, body in calls] == ["a", "b"]
    assert len(peers) == 2


async def test_text_that_is_not_utf8_still_goes_escaped(server: Served) -> None:
    """A lone surrogate (a Slack modal's note may hold one: JSON's "\\ud800" decodes to it)
    is not UTF-8: the fast encoder refuses it, and the call goes as `json` writes it, escaped.
    Slack's answer echoes the message: read as well, so the post counts as made (taken for
    no answer, it was sent again). Other text goes as UTF-8 and arrives the same."""
    url, calls, _ = server
    slack = SlackTransport("xoxb-t", url, timeout=5)
    texts = ["Ünïcødé — 日本語 🚀", "note \ud800 held"]
    try:
        sent = [await slack.send([("chat.postMessage",
                                   {"channel": "C1", "text": text, "framing": "echo"})])
                for text in texts]
    finally:
        await slack.close()
    assert sent == ["1.1", "1.2"]
    assert [body["text"] for _, body in calls] == texts
