"""The template environments and the filters templates use to escape for their medium.

Slack's environment JSON-escapes every expression (a template cannot emit broken JSON) and its
`mrkdwn` filter escapes `&`, `<`, `>`, Slack's only control characters; email's HTML is
autoescaped. Wording every medium shares lives in `templates/words/`, rendered to plain text
by a filter (`why`) so each medium's template escapes it once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import cache, lru_cache
from json.encoder import encode_basestring
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
    # `encode_basestring` is what json.dumps(value, ensure_ascii=False) calls for a string,
    # without building an encoder per expression (~2 µs each, ~20 expressions a message).
    if isinstance(value, str):
        return encode_basestring(value)[1:-1]
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


_DICT_ATTRIBUTES = frozenset(dir(dict))


class _Environment(Environment):
    """Jinja's environment, with `{{ s.title }}` on a plain dict read as `s["title"]` at once.

    Jinja tries `getattr(obj, "title")` first, and for a dict that raises and catches an
    AttributeError per expression (~40 a Slack alert, a fifth of its rendering). A plain dict's
    attributes are exactly dict's own (`_DICT_ATTRIBUTES`: methods such as `get`), so reading
    any other name as an item first is what Jinja's lookup would have found, no more.
    """

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)


# auto_reload=False: templates ship with the release and do not change under a running
# process. Jinja's default stats each template's file on every get_template (~0.5 ms a Slack
# message under load, measured in docs/performance.md).
@cache
def slack_env() -> Environment:
    env = _Environment(
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
    env = _Environment(loader=FileSystemLoader(templates_dir() / "words"), autoescape=False,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                      auto_reload=False)
    env.filters.update(figure=figure)
    return env


def _words(clauses: Any) -> str:
    return str(words_env().get_template("why.j2").module.why(clauses))  # type: ignore[attr-defined]


# Distinct reasons remembered in words: a desk's reasons are a few figures × its targets, and
# the macro costs ~30 µs a call, a sixth of a Slack alert's rendering.
WORDS_KEPT = 4096


@lru_cache(maxsize=WORDS_KEPT)
def _words_of_json(clauses: str) -> str:
    # Worded from the key itself, so that what is remembered is a function of the key alone.
    return _words(json.loads(clauses))


@lru_cache(maxsize=WORDS_KEPT)
def _words_of_text(reason: str) -> str:
    return _words(reason)


def why_words(clauses: Why) -> str:
    """The `why` filter: a reason's clauses in words (templates/words/why.j2).

    Clauses are JSON data (as stored, or `Clause.data()`), which a JSON round trip keeps as
    they are; anything else is worded directly, never remembered.
    """
    if isinstance(clauses, str):
        return _words_of_text(clauses)
    try:
        key = json.dumps(clauses)
    except (TypeError, ValueError):  # not JSON data
        return _words(clauses)
    return _words_of_json(key)


@cache
def email_env() -> Environment:
    env = _Environment(
        loader=FileSystemLoader(templates_dir() / "email"),
        autoescape=select_autoescape(["html"]), undefined=StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, auto_reload=False,
    )
    env.filters.update(clip=clip, why=why_words)
    return env
