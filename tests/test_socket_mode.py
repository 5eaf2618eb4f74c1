"""Socket Mode: with SLACK_APP_TOKEN set, commands arrive over a WebSocket instead of HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.conftest import story
from tests.fakes import FakeSlack, FakeSocketMode
from tests.process import Alertbot


def test_a_slash_command_over_socket_mode_is_acked_then_answered(tmp_path: Path) -> None:
    socket = FakeSocketMode().start()
    slack = FakeSlack().start()
    slack.socket_url = socket.url
    bot = Alertbot.make(tmp_path, '[slack]\npacing = "0s"\n', slack.url,
                        SLACK_APP_TOKEN="xapp-1-test")
    source = tmp_path / "one.json"
    source.write_text(json.dumps(story(id="sock", title="Socket story",
                                       key_facts=["Over the socket"])))
    assert bot.cli("ingest", str(source)).returncode == 0
    try:
        bot.start()
        socket.wait_connected()
        opened = [c for c in slack.calls if c.method == "apps.connections.open"]
        assert opened[0].headers["Authorization"] == "Bearer xapp-1-test"
        socket.send({"envelope_id": "env-1", "type": "slash_commands",
                     "accepts_response_payload": True,
                     "payload": {"command": "/story", "text": "sock", "team_id": "T1",
                                 "channel_id": "C0X", "user_id": "U1", "trigger_id": "1",
                                 "response_url": f"{slack.url}response_url/s"}})
        # The envelope is acked empty at once; the answer goes to the command's response_url.
        ack = socket.wait_for_reply("env-1")
        assert not ack.get("payload"), ack
        reply = slack.wait_for_call("response_url/s")
        assert reply.body["response_type"] == "ephemeral"
        assert "Socket story" in json.dumps(reply.body["blocks"])
        assert "1. Over the socket" in json.dumps(reply.body["blocks"])
        # Socket Mode replaces the HTTP route: nothing answers at /slack/events.
        assert httpx.post(f"{bot.url}/slack/events", content=b"x").status_code == 404
    finally:
        bot.stop()
        slack.stop()
        socket.stop()
