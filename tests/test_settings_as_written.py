"""Every setting means what is written: zero, empty and false included; only an absent key
falls back to the level above.

The cases are generated from the settings models: every field of a route, of `[slack]`,
`[email]`, `[delivery]` and `[rules]` is written in TOML (as an operator writes it) with a
zero/empty/false value and with a non-default one, then read back where the product reads it:
the target a route becomes, or the section itself. A field added later gets its cases from its
type; one whose type has no example fails `test_every_setting_has_examples` until it gets one.
"""

from __future__ import annotations

import re
import types
import typing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from bot.rules.targets import SlackRoute, Target, email_target, slack_route_target, slack_targets
from bot.settings import (
    ConfigError,
    DeliveryConfig,
    DeskConfig,
    EmailConfig,
    RouteConfig,
    RulesConfig,
    SlackConfig,
    SourceConfig,
    load_desk,
)

# Values whose shape a type cannot tell: (zero/empty, non-default), as TOML and as read.
BY_NAME: dict[str, list[tuple[str, Any]]] = {
    "quiet_hours": [('""', None), ('"22:00-07:00"', "22:00-07:00")],
    "timezone": [('"UTC"', "UTC"), ('"Pacific/Auckland"', "Pacific/Auckland")],
    "digest_hour": [('"00:00"', "00:00"), ('"06:30"', "06:30")],
    "sentiments": [("[]", frozenset()), ('["very_negative"]', frozenset({"very_negative"}))],
    "topics": [("[]", frozenset()), ('["launch"]', frozenset({"launch"}))],
    "admins": [("[]", ()), ('["U0ADMIN"]', ("U0ADMIN",))],
    # Written empty, nobody may act (absent: anyone, None); a user and a user group.
    "actions_allowed": [("[]", ()), ('["U0ANA", "S0DESK"]', ("U0ANA", "S0DESK"))],
    # Whom a route escalates to: users, a user group and a channel.
    "escalate_to": [("[]", ()), ('["S0ONCALL", "U0ANA", "C0DUTY"]', ("S0ONCALL", "U0ANA",
                                                                    "C0DUTY"))],
    # Empty: no link previews; written in capitals, read as Slack sends hosts.
    "unfurl_domains": [("[]", ()), ('["News.Desk.example"]', ("news.desk.example",))],
    # Empty: no sign-up page; domains are read lower-case, an "@" in front dropped.
    "signup_domains": [("[]", ()), ('["Desk.Example", "@bureau.example"]',
                                    ("desk.example", "bureau.example"))],
}
# Keys a route setting is refused without, written beside it (escalate_after needs someone
# to escalate to).
COMPANIONS = {"escalate_after": 'escalate_to = ["U0ANA"]\n'}
REFUSED = "refused"  # a zero that makes no sense here (a lease, a timeout) is an error by name
# Sections and fields that are not a single value (tested elsewhere).
NOT_VALUES = {"channel", "routes", "commands", "sources", "rules", "delivery", "slack", "email"}


def _unwrap(field: FieldInfo) -> tuple[Any, list[Any]]:
    """The value type of `field` without `| None` and `Annotated`, and its constraints."""
    kind, rules = field.annotation, list(field.metadata)
    if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
        kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
    if typing.get_origin(kind) is typing.Annotated:
        kind, *extra = typing.get_args(kind)
        for item in extra:  # Field(ge=…) inside Annotated, seen through `| None`
            rules += getattr(item, "metadata", [item])
    return kind, rules


def examples(name: str, field: FieldInfo) -> list[tuple[str, Any]]:
    """A zero/empty/false value and a non-default one for `field`, as TOML and as read."""
    if name in BY_NAME:
        return BY_NAME[name]
    kind, rules = _unwrap(field)
    if kind is timedelta:
        positive = any(getattr(getattr(r, "func", None), "__name__", "") == "_positive"
                       for r in rules)
        zero = REFUSED if positive else timedelta(0)
        return [('"0s"', zero), ("0", zero), ('"7s"', timedelta(seconds=7))]
    if kind is bool:
        return [("false", False), ("true", True)]
    if kind in (int, float):
        # The lowest value it accepts (0 unless it has a `ge` bound), and one well above it.
        low = next((float(r.ge) for r in rules if getattr(r, "ge", None) is not None), 0.0)
        high = 10 if name.endswith("impact") else low + 7
        return [(f"{low:g}", low), (f"{high:g}", high)]
    return []


def value_fields(model: type[BaseModel]) -> dict[str, FieldInfo]:
    return {n: f for n, f in model.model_fields.items() if n not in NOT_VALUES}


SECTIONS: dict[str, type[BaseModel]] = {
    "rules": RulesConfig, "delivery": DeliveryConfig, "slack": SlackConfig,
    "email": EmailConfig}
ROUTE_CASES = [(name, toml, read) for name, field in value_fields(RouteConfig).items()
               for toml, read in examples(name, field)]
DESK_CASES = [(section, name, toml, read) for section, model in SECTIONS.items()
              for name, field in value_fields(model).items()
              for toml, read in examples(name, field)]


def test_every_setting_has_examples() -> None:
    models = [RouteConfig, SourceConfig, *SECTIONS.values()]
    missing = [f"{model.__name__}.{name}" for model in models
               for name, field in value_fields(model).items() if not examples(name, field)
               and name not in ("kind", "path", "url")]  # a source's identity, not a setting
    assert missing == []
    print(f"{len(ROUTE_CASES)} route cases over {len(value_fields(RouteConfig))} route "
          f"settings, {len(DESK_CASES)} desk cases over "
          f"{sum(len(value_fields(m)) for m in SECTIONS.values())} desk settings")


def desk_from(tmp_path: Path, text: str) -> DeskConfig:
    path = tmp_path / "alertbot.toml"
    path.write_text(text, encoding="utf-8")
    return load_desk(path)


def seen(target: Target, name: str) -> Any:
    """Where a target carries a route setting (thresholds sit together)."""
    return getattr(target.thresholds if name.startswith("min_") else target, name)


# The desk's own gate is the lowest, so any threshold a route writes is the one that counts;
# the desk's window is 30 s, so a route's "0s" is told apart from falling back to it.
DESK = '[rules]\nmin_impact = 1\nmin_sources = 1\n\n[slack]\nbatch_window = "30s"\n'


@pytest.mark.parametrize(("name", "toml", "read"), ROUTE_CASES,
                         ids=[f"{n}={t}" for n, t, _ in ROUTE_CASES])
def test_a_route_takes_the_value_it_wrote(tmp_path: Path, name: str, toml: str, read: Any
                                          ) -> None:
    desk = desk_from(tmp_path, f'{DESK}\n[[slack.routes]]\nchannel = "C0ROUTE"\n{name} = {toml}\n'
                               f'{COMPANIONS.get(name, "")}')
    [target] = slack_targets(desk)
    assert seen(target, name) == read


@pytest.mark.parametrize("name", sorted(value_fields(RouteConfig)))
def test_a_route_without_the_key_takes_the_desks(tmp_path: Path, name: str) -> None:
    desk = desk_from(tmp_path, f'{DESK}\n[[slack.routes]]\nchannel = "C0ROUTE"\n')
    [target] = slack_targets(desk)
    default = RouteConfig.model_fields[name].default
    fallback = {"batch_window": timedelta(seconds=30), "min_impact": 1, "min_sources": 1,
                "escalate_to": ()}  # a tuple on the target: mentions keep the written order
    expected = fallback.get(name, frozenset(default) if isinstance(default, tuple) else default)
    assert seen(target, name) == expected


@pytest.mark.parametrize(("section", "name", "toml", "read"), DESK_CASES,
                         ids=[f"{s}.{n}={t}" for s, n, t, _ in DESK_CASES])
def test_a_desk_setting_takes_the_value_it_wrote(tmp_path: Path, section: str, name: str,
                                                 toml: str, read: Any) -> None:
    if read == REFUSED:
        with pytest.raises(ConfigError, match=rf"{section}\.{name}: must be longer than 0s"):
            desk_from(tmp_path, f"[{section}]\n{name} = {toml}\n")
        return
    desk = desk_from(tmp_path, f"[{section}]\n{name} = {toml}\n")
    assert getattr(getattr(desk, section), name) == read


@pytest.mark.parametrize("window", ['"0s"', "0", '"45s"'])
def test_desk_windows_reach_slash_command_routes_and_email_readers(tmp_path: Path,
                                                                   window: str) -> None:
    desk = desk_from(tmp_path, f"[slack]\nbatch_window = {window}\n\n"
                               f"[email]\nbatch_window = {window}\n")
    expected = timedelta(seconds=45 if "45" in window else 0)
    route = SlackRoute("C0MADE", (), None, "U1", datetime(2026, 12, 1, tzinfo=UTC), None, "UTC")
    assert slack_route_target(route, desk).batch_window == expected
    assert email_target("ed@desk.example", (), desk).batch_window == expected


def test_a_route_may_only_tighten_the_desks_gate(tmp_path: Path) -> None:
    desk = desk_from(tmp_path, '[rules]\nmin_impact = 8\nmin_sources = 2\n\n'
                               '[[slack.routes]]\nchannel = "C0LOOSE"\nmin_impact = 5\n'
                               'min_sources = 1\n\n'
                               '[[slack.routes]]\nchannel = "C0STRICT"\nmin_impact = 9.5\n')
    loose, strict = slack_targets(desk)
    assert (loose.thresholds.min_impact, loose.thresholds.min_sources) == (8, 2)
    assert (strict.thresholds.min_impact, strict.thresholds.min_sources) == (9.5, 2)


def test_actions_allowed_names_an_id_that_is_not_a_slack_user_or_group(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'@ana' is not a Slack user"):
        desk_from(tmp_path, '[slack]\nactions_allowed = ["U0ANA", "@ana"]\n')
    assert desk_from(tmp_path, "[slack]\n").slack.actions_allowed is None  # absent: anyone


@pytest.mark.parametrize("written", ["https://desk.example", "desk.example/news",
                                     "desk.example:8443", "*.desk.example", "desk", ""])
def test_unfurl_domains_names_a_value_that_is_not_a_bare_domain(tmp_path: Path,
                                                                 written: str) -> None:
    with pytest.raises(ConfigError, match=rf"unfurl_domains.*{re.escape(repr(written))} is not "
                                          "a domain name"):
        desk_from(tmp_path, f'[slack]\nunfurl_domains = ["desk.example", "{written}"]\n')
    assert desk_from(tmp_path, "[slack]\n").slack.unfurl_domains == ()  # absent: off
