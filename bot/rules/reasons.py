"""A decision's reason as data: clauses that templates word for readers and logs print plainly.

A clause is a code and its figures, e.g. `Clause("impact", {"value": 9, "min": 8, "ok": True})`.
The matches table keeps a sent story's clauses as JSON (`to_json`), so the "Why:" line of a
message sent later says why it was decided then; `templates/words/why.j2` words them. `plain`
is the operator's form, for logs, the outbox's `reason` column and `alertbot deliveries`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple


class Clause(NamedTuple):
    code: str  # "impact", "sources", "target", "no_topic", "sentiment", "too_old", "preview"
    figures: Mapping[str, Any]

    def data(self) -> dict[str, Any]:
        """The clause as templates and the database take it: `{"is": code, **figures}`."""
        return {"is": self.code, **self.figures}


Why = tuple[Clause, ...]


def figure(value: float) -> str:
    """A score as readers see it: 8, 7.9, 8.5 (no trailing .0)."""
    return f"{value:g}"


def target_clause(kind: str, address: str, topics: Iterable[str] = (),
                  via_alerts: bool = False) -> Clause:
    """Where a story was sent: a config `route`, a `dm`, or an email `subscriber`."""
    return Clause("target", {"kind": kind, "address": address, "topics": sorted(topics),
                             "via_alerts": via_alerts})


def to_json(why: Why) -> str:
    return json.dumps([clause.data() for clause in why], ensure_ascii=False)


def plain(why: Why) -> str:
    """The operator's one-line form: "impact 9 ≥ 8 · 3 independent sources ≥ 2 · route C0X"."""
    return " · ".join(_PLAIN[clause.code](clause.figures) for clause in why)


def _compared(f: Mapping[str, Any]) -> str:
    return "≥" if f["ok"] else "<"


def _target(f: Mapping[str, Any]) -> str:
    name = {"route": "route", "dm": "DM to", "subscriber": "subscriber"}[f["kind"]]
    topics = f" topics=[{','.join(f['topics'])}]" if f["topics"] else ""
    return f"{name} {f['address']}{topics}{' (via /alerts)' if f['via_alerts'] else ''}"


def _sources(f: Mapping[str, Any]) -> str:
    word = "source" if f["value"] == 1 else "sources"
    return f"{f['value']} independent {word} {_compared(f)} {f['min']}"


_PLAIN: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "impact": lambda f: f"impact {figure(f['value'])} {_compared(f)} {figure(f['min'])}",
    "sources": _sources,
    "target": _target,
    "no_topic": lambda f: f"no topic of {_target(f['target'])}",
    "sentiment": lambda f: f"sentiment {f['value']} not wanted by {_target(f['target'])}",
    "too_old": lambda f: (f"scored {f['hours']:.1f} h ago, older than max_alert_age "
                          f"{f['max_age']}"),
    "preview": lambda f: "preview",
}
