"""The template environments and the filters templates use to escape for their medium.

Slack's environment JSON-escapes every expression (a template cannot emit broken JSON) and its
`mrkdwn` filter escapes `&`, `<`, `>`, Slack's only control characters; email's HTML is
autoescaped. Wording every medium shares lives in `templates/words/`, rendered to plain text
by a filter (`why`) so each medium's template escapes it once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from bot.rules.reasons import figure

SECTION_LIMIT = 3000  # characters in a Block Kit section's text

# A reason as the "Why:" template (templates/words/why.j2) takes it: clause data
# (bot/rules/reasons.py), or a plain string stored by an older release; "" for none.
Why = Sequence[Mapping[str, Any]] | str


def templates_dir() -> Path:
    """The templates shipped in the wheel (bot/templates), else the repository's top level."""
    package = Path(__file__).parents[1]  # bot/
    packaged = package / "templates"
    return packaged if packaged.is_dir() else package.parent / "templates"


def escape_mrkdwn(text: str) -> str:
    """Neutralise Slack's control characters; `&` first so nothing is escaped twice."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    """Shorten to at most `limit` characters with "…", never cutting an `&…;` entity in half."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + "…"


def mrkdwn(text: Any, limit: int = SECTION_LIMIT) -> str:
    return clip(escape_mrkdwn(str(text)), limit)


def slack_url(url: str) -> str:
    """Make a URL safe inside `<url|label>`: `|` and `>` would end it early."""
    return (url.replace("&", "&amp;").replace("<", "%3C").replace(">", "%3E")
            .replace("|", "%7C"))


def _json_fragment(value: Any) -> Any:
    # Every `{{ … }}` in a Slack template lands inside a JSON string or as a JSON number.
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)[1:-1]
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    return value


# auto_reload=False: templates ship with the release and do not change under a running
# process. Jinja's default stats each template's file on every get_template (~0.5 ms a Slack
# message under load, measured in docs/performance.md).
@cache
def slack_env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(templates_dir() / "slack"), autoescape=False,
        undefined=StrictUndefined, finalize=_json_fragment, trim_blocks=True, lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters.update(mrkdwn=mrkdwn, slack_url=slack_url, clip=clip, tojson=json.dumps,
                       figure=figure, why=why_words)
    return env


@cache
def words_env() -> Environment:
    """Wording every medium shares (templates/words), rendered to plain text by a filter so
    that each medium's own template escapes it once."""
    env = Environment(loader=FileSystemLoader(templates_dir() / "words"), autoescape=False,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                      auto_reload=False)
    env.filters.update(figure=figure)
    return env


def why_words(clauses: Why) -> str:
    """The `why` filter: a reason's clauses in words (templates/words/why.j2)."""
    return str(words_env().get_template("why.j2").module.why(clauses))  # type: ignore[attr-defined]


@cache
def email_env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(templates_dir() / "email"),
        autoescape=select_autoescape(["html"]), undefined=StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, auto_reload=False,
    )
    env.filters.update(clip=clip, why=why_words)
    return env
