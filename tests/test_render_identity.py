"""Every message kind renders byte for byte what the renderer before issue 14's speed-ups did.

`tests/render_golden.json` holds, per case, the SHA-256 and length of what the renderer as it
was (main at c98d7d7) returned, written once by `PYTHONPATH=<that checkout> python
tests/test_render_identity.py --write` (the outputs themselves are 1.4 MB; a digest compares
them as exactly). On a mismatch, write the goldens from that checkout with `--dump DIR` and
from this one, and diff the two folders.
The cases are stories a desk does not send every day: hostile text (`&<>`, quotes,
backslashes, template syntax), unicode, titles at their 1,000-character limit with `&` at the
cut, 200-character ids, links too long to link, downgraded items, every action-item state,
every reason clause, batches too large to list whole; through every Slack and email kind via
`Renderer.render`, as the delivery workers call it. Emails are compared whole, with their
Date, Message-ID and MIME boundary (which differ on every call) replaced by stand-ins.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bot.messages import Renderer
from bot.messages.kinds import Entry, Load
from bot.rules.reasons import Clause, target_clause, to_json
from bot.transports import Outgoing
from tests.conftest import make_config

GOLDEN = Path(__file__).with_name("render_golden.json")
NOW = datetime(2026, 12, 2, 4, 0, tzinfo=UTC)
HOSTILE = ('<!channel> <https://evil.example|click> <script>alert(1)</script> &amp; <@U123> '
           '"quoted" \\back\\slash\\ {{ not_a_variable }} {% raw %} `code` *bold* _it_ ~s~')
UNICODE = "Ünïcødé — «guillemets» 日本語 עברית 🚀👩‍🚀 e\u0301 \u2028sep\u2029 \u00a0nbsp"


def payload(n: int, **fields: Any) -> dict[str, Any]:
    story_id = f"story-{n:03d}"
    base: dict[str, Any] = {
        "id": story_id, "url": f"https://desk.example/s/{story_id}?a=1&b=2",
        "title": f"Operator loses contact with satellite {n}",
        "scored_at": (NOW - timedelta(minutes=n)).isoformat(), "impact": 9,
        "sentiment": "negative", "topics": ["launch"],
        "sources": [{"outlet": "SpaceNews", "url": f"https://spacenews.example/{n}"},
                    {"outlet": "Reuters", "url": f"https://reuters.example/{n}"}],
        "key_takeaways": ["Operator confirms loss of contact"],
        "key_facts": ["Launched in 2024", "Serves three government customers"],
    }
    base.update(fields)
    return base


def payloads() -> list[dict[str, Any]]:
    amp_at_cut = ("x" * 295 + "&<>&" * 200)[:1000]
    return [
        payload(0),
        payload(1, title=HOSTILE, key_takeaways=[HOSTILE, UNICODE], key_facts=[HOSTILE],
                sources=[{"outlet": "<!here>", "url": "https://a.example/x"},
                         {"outlet": 'B & "<b>"\\', "url": "https://b.example/y"}],
                topics=["launch", "<cyber>"], sentiment="positive"),
        payload(2, title=UNICODE, key_takeaways=[UNICODE] * 5, sentiment="neutral",
                what_to_watch=UNICODE, affected=[UNICODE]),
        payload(3, title=amp_at_cut, key_takeaways=[amp_at_cut] * 4, key_facts=[amp_at_cut] * 4),
        payload(4, id="i" * 95 + "-&<>\"'\\ü" + "d" * 97, title="A story with a 200-char id"),
        payload(5, url="https://desk.example/" + "long&path/" * 250, title="Too long to link"),
        payload(6, url="https://desk.example/a|b>c<d&e", title="A URL with | and >"),
        payload(7, impact=5, title="Re-scored below the rule"),
        payload(8, impact=7.5, verified_by=1, title="Sources and verified_by disagree"),
        payload(9, sources=None, verified_by=3, title="Only verified_by"),
        payload(10, sources=[{"outlet": f"Outlet {k} & <co>", "url": f"https://o{k}.example/"}
                             for k in range(25)],
                key_takeaways=[f"Takeaway {k}" for k in range(8)], key_facts=[], impact=10),
        payload(11, key_takeaways=[], key_facts=[], topics=[], title="Bare story"),
    ]


WHYS: list[tuple[str, str | None]] = [
    ("impact 9 ≥ 8", to_json((Clause("impact", {"value": 9, "min": 8, "ok": True}),
                              Clause("sources", {"value": 2, "min": 2, "ok": True}),
                              target_clause("route", "C0SPACEOPS", ["launch"], True)))),
    ("plain reason from an older release <&>", None),
    ("", None),
    ("mixed", to_json((Clause("impact", {"value": 7.5, "min": 8.0, "ok": False}),
                       Clause("sources", {"value": 1, "min": 2, "ok": False}),
                       Clause("no_topic", {"target": target_clause("dm", "U1").figures}),
                       Clause("sentiment", {"value": "negative", "target": target_clause(
                           "subscriber", "a@b.example", ["<x>", "y & z"]).figures}),
                       Clause("too_old", {"hours": 49.25, "max_age": "1 day, 0:00:00"}),
                       Clause("preview", {})))),
]

def owner(**fields: Any) -> dict[str, Any]:
    """An action-item state as the outbox reads it (`owners_of`)."""
    return {"by": None, "at": None, "note": None, "reason": None, **fields}


OWNERS: list[dict[str, Any] | None] = [
    None,
    owner(state="open", by=None, at="2026-12-02T03:00:00+00:00",
          snoozed_until="2026-12-02T07:00:00+00:00"),
    owner(state="claimed", by="U0ED<&>", by_name="Ed <&>", at="2026-12-02T03:10:00+00:00"),
    owner(state="claimed", by="U0ED", at="2026-12-02T03:10:00+00:00",
          snoozed_until="2026-12-02T09:00:00+00:00"),
    owner(state="done", by="U0ED", at="2026-12-02T03:20:00+00:00", note=HOSTILE),
    owner(state="dismissed", by=None, at="2026-12-02T03:30:00+00:00",
          reason="not_our_beat", note='"quote" \\ <b>'),
    owner(state="dismissed", by="U0ED", at="2026-12-02T03:30:00+00:00", reason="odd"),
    owner(state="open", by="U0ED", at="2026-12-02T03:40:00+00:00"),
]


def entries() -> list[Entry]:
    found = []
    for n, story in enumerate(payloads()):
        reason, why = WHYS[n % len(WHYS)]
        found.append(Entry(story["id"], reason, json.dumps(story), why))
    return found


def many(count: int, title: str) -> list[Entry]:
    reason, why = WHYS[0]
    return [Entry(f"bulk-{k:03d}", reason, json.dumps(payload(
        100 + k, id=f"bulk-{k:03d}", title=f"{title} {k}")), why) for k in range(count)]


def normal(sent: Any) -> Any:
    """What a render returns, as JSON-able data with per-call stand-ins."""
    if isinstance(sent, Outgoing):
        sent = sent.data.decode()
    elif isinstance(sent, EmailMessage):
        sent = sent.as_string()
    else:
        return json.loads(json.dumps(sent, ensure_ascii=False))
    sent = re.sub(r"(?m)^(Date|Message-ID): .*$", r"\1: X", sent)
    return re.sub(r"={15}\d+==", "=BOUNDARY=", sent)


def parent(kind: str) -> SimpleNamespace:
    return SimpleNamespace(id=1, kind=kind, remote_id="1700000000.000100", status="sent",
                           not_before=NOW)


def cases() -> Iterator[tuple[str, Callable[[Renderer], Any]]]:
    stored = entries()
    slack, email = "slack:C0SPACEOPS", "email:reader@desk.example"

    def render(kind: str, target: str, details: dict[str, Any] | None, load: Load
               ) -> Callable[[Renderer], Any]:
        return lambda r: r.render(kind, *target.split(":", 1)[:1], target, details, load, NOW)

    for n, entry in enumerate(stored):
        for o, state in enumerate(OWNERS):
            owners = {} if state is None else {entry.story_id: state}
            yield f"alert slack {n} owner {o}", render("alert", slack, None,
                                                       Load([entry], owners=owners))
        yield f"alert email {n}", render("alert", email, None, Load([entry]))
        yield f"facts {n}", render("facts", slack, {"thread_ts": "1.2"}, Load([entry]))
        yield f"unfurl {n}", render("unfurl", slack, {
            "links": {"https://desk.example/x": entry.story_id}, "ts": "1.2"}, Load([entry]))
        for how in ("thread", "dm", "channel"):
            yield f"escalate {how} {n}", render("escalate", slack, {
                "story_id": entry.story_id, "how": how, "route": "C0SPACEOPS",
                "to": ["U0ED", "S0TEAM", "C0OTHER"], "round": 1 + n % 3, "of": 3},
                Load([entry], parent("alert")))
        owned = {e.story_id: OWNERS[k % len(OWNERS)] for k, e in enumerate(stored)
                 if OWNERS[k % len(OWNERS)] is not None}
        yield f"update {n}", render("update", slack, {
            "story_id": entry.story_id, "impact": [9, 7.5], "sources": [2, 3],
            "qualifies": [True, n % 2 == 0], "verdict": json.loads(WHYS[3][1] or "[]")},
            Load(stored, parent("batch"), owners=owned))
        yield f"owner {n}", render("owner", slack, {
            "story_id": entry.story_id, "owner": OWNERS[1 + n % (len(OWNERS) - 1)]},
            Load([entry], parent("alert")))
    owned = {e.story_id: OWNERS[k % len(OWNERS)] for k, e in enumerate(stored)
             if OWNERS[k % len(OWNERS)] is not None}
    groups = {"all": stored, "one": stored[:1], "ten": stored[:10],
              "thirty": many(30, "Bulk item"), "sixty long": many(60, "Long title " * 60)}
    for name, group in groups.items():
        yield f"batch slack {name}", render("batch", slack, None, Load(group, owners=owned))
        yield f"batch email {name}", render("batch", email, None, Load(group))
        yield f"test slack {name}", render("test", slack, None, Load(group))
        yield f"test email {name}", render("test", email, None, Load(group))
        yield f"daily {name}", render("daily", email, {
            "date": "2026-12-02", "since": "2026-12-01T08:00:00+00:00",
            "timezone": "America/New_York", "alerted": [e.story_id for e in group[::2]],
            "stories": [e.story_id for e in group]}, Load(group, owners=owned))
    yield "test slack empty", render("test", slack, None, Load([]))
    yield "test email empty", render("test", email, None, Load([]))
    yield "confirm", render("confirm", email, {"expires": int(NOW.timestamp()) + 3600}, Load([]))


def rendered() -> dict[str, str]:
    """Each case's output as text: Slack's calls as JSON, an email as its MIME text."""
    with tempfile.TemporaryDirectory() as name:
        config = make_config(Path(name), "sqlite://", public_url="https://alerts.desk.example/")
        renderer = Renderer(config, b"golden-key")
        return {label: json.dumps(normal(make(renderer)), ensure_ascii=False, indent=1)
                for label, make in cases()}


def digest(text: str) -> str:
    return f"{hashlib.sha256(text.encode()).hexdigest()} {len(text)}"


def test_every_kind_renders_what_it_rendered_before() -> None:
    golden = json.loads(GOLDEN.read_text())
    now = rendered()
    assert sorted(now) == sorted(golden)
    assert [label for label in golden if digest(now[label]) != golden[label]] == []


@pytest.mark.parametrize("label", ["alert slack 1 owner 4", "batch slack sixty long",
                                   "batch email all"])
def test_the_cases_reach_what_they_are_about(label: str) -> None:
    # Hostile text arrives escaped for where it lands; the long batch overflows its listing.
    text = rendered()[label]
    if "sixty" in label:
        assert "more action items, not listed here" in text
    elif "email" in label:
        assert "&lt;!channel&gt;" in text and "<!channel>" not in text.partition("<html")[2]
    else:
        assert "&lt;!channel&gt;" in text and "<!channel>" not in text


def test_a_note_that_is_not_utf8_renders_as_written(tmp_path: Path) -> None:
    """A dismissal note from Slack may hold a lone surrogate (JSON's "\\ud800" decodes to
    one); the rendered message, read back by the fast JSON reader first, still carries it."""
    renderer = Renderer(make_config(tmp_path, "sqlite://"), b"golden-key")
    entry = entries()[0]
    note = owner(state="dismissed", by="U0ED", at="2026-12-02T03:30:00+00:00",
                 reason="odd", note="see \ud800 here")
    [(method, args)] = renderer.render("alert", "slack", "slack:C0SPACEOPS", None,
                                       Load([entry], owners={entry.story_id: note}), NOW)
    assert method == "chat.postMessage"
    assert "see \ud800 here" in json.dumps(args["blocks"], ensure_ascii=False)


if __name__ == "__main__" and sys.argv[1:2] == ["--write"]:
    GOLDEN.write_text(json.dumps({label: digest(text) for label, text in rendered().items()},
                                 indent=0, sort_keys=True) + "\n")
elif __name__ == "__main__" and sys.argv[1:2] == ["--dump"]:
    folder = Path(sys.argv[2])
    folder.mkdir(parents=True, exist_ok=True)
    for label, text in rendered().items():
        (folder / f"{label}.txt").write_text(text)
