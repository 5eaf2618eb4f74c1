"""Look-ups for `/story`: the exact id, else the exact URL, else the best word matches.

Words are searched in titles, takeaways, key facts and source headlines (SQLite FTS5,
PostgreSQL full-text search); why not bm25 is in docs/decisions.md ("Slack app").
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlalchemy import Connection, bindparam, case, func, literal, or_, select, text

from bot.db.schema import STORIES
from bot.stories.model import Story


def find(db: Connection, query: str, limit: int = 5) -> list[Story]:
    """Stories for a `/story` query: the exact id, else the exact URL, else the best word matches.

    Words are searched in titles, takeaways, key facts and source headlines (SQLite FTS5,
    PostgreSQL full-text search), best first, a title match counting most.
    """
    wanted = query.strip()
    row = db.execute(_EXACT, {"wanted": wanted}).first()
    if row is not None:
        return [Story.model_validate_json(row.payload)]
    words = [w for w in re.findall(r"\w+", wanted.lower()) if len(w) > 1][:8]
    if not words:
        return []
    search = {"sqlite": _search_sqlite, "postgresql": _search_postgres}.get(
        db.dialect.name, _search_titles)
    # Every word first (what a reader means by "hypersonic pacific"); any word if none has all.
    found = search(db, words, limit, True) or search(db, words, limit, False)
    return [Story.model_validate_json(payload) for payload in found]


# Built once: a statement made per call cost more than its indexed read (SQLAlchemy builds it,
# then derives its cache key; measured ~0.3 ms a query under the /story benchmark's load).
# The id and the URL in one statement (each column's index, then the id's match first): a
# word search no longer pays for two misses.
_EXACT = (select(STORIES.c.payload)
          .where(or_(STORIES.c.id == bindparam("wanted"), STORIES.c.url == bindparam("wanted")))
          .order_by(case((STORIES.c.id == bindparam("wanted"), 0), else_=1)).limit(1))
_FTS = text("SELECT stories.payload FROM stories_fts "
            "JOIN stories ON stories.rowid = stories_fts.rowid "
            "WHERE stories_fts MATCH :query ORDER BY stories_fts.rowid DESC LIMIT :limit")


def by_urls(db: Connection, urls: Sequence[str]) -> dict[str, str]:
    """The id of the story stored under each of `urls` (exactly as written, as `/story <url>`
    finds it); a URL no story has is left out. One indexed read."""
    if not urls:
        return {}
    rows = db.execute(select(STORIES.c.url, STORIES.c.id).where(STORIES.c.url.in_(list(urls)))
                      .order_by(STORIES.c.scored_at))
    return {row.url: row.id for row in rows}  # two stories of one URL: the newest scored


# Kept in step with migration 0004's index expression, which this must repeat to use it.
PG_SEARCH_VECTOR = ("setweight(to_tsvector('english', title), 'A') || "
                    "setweight(to_tsvector('english', coalesce(search_text, '')), 'B')")


def _search_sqlite(db: Connection, words: list[str], limit: int, every: bool) -> list[str]:
    # Stories with the words in their title, newest first; only when no title has them, the
    # stories with them anywhere. No bm25(): it counts every story holding a word (~20 ms for
    # a common word at a million stories), where a newest-first walk stops at `limit` matches.
    # Each word is quoted, so nothing typed in Slack is read as FTS5 syntax.
    terms = (" " if every else " OR ").join(f'"{w}"' for w in words)
    for query in (f"title : ({terms})", terms):
        rows = db.execute(_FTS, {"query": query, "limit": limit}).all()
        if rows:
            return [row.payload for row in rows]
    return []


def _search_postgres(db: Connection, words: list[str], limit: int, every: bool) -> list[str]:
    # Words are \w+ only, so joining them with & or | is a well-formed tsquery.
    rows = db.execute(text(
        f"SELECT payload FROM stories, to_tsquery('english', :query) AS query "
        f"WHERE ({PG_SEARCH_VECTOR}) @@ query "
        f"ORDER BY ts_rank({PG_SEARCH_VECTOR}, query) DESC, scored_at DESC LIMIT :limit"
    ), {"query": (" & " if every else " | ").join(words), "limit": limit})
    return [row.payload for row in rows]


def _search_titles(db: Connection, words: list[str], limit: int, every: bool) -> list[str]:
    """Portable fallback: more title words matched first, then newest."""
    title = func.lower(STORIES.c.title)
    score = sum((case((title.like(f"%{w}%"), 1), else_=0) for w in words), literal(0))
    rows = db.execute(
        select(STORIES.c.payload).where(score >= (len(words) if every else 1))
        .order_by(score.desc(), STORIES.c.scored_at.desc()).limit(limit)
    )
    return [row.payload for row in rows]
