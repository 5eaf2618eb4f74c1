"""Copy the bundled sample stories with their times moved so the newest is five minutes old.

The samples are dated; alertbot never alerts on stories older than `max_alert_age` (24 h), so a
demo on any later day needs them re-dated. Gaps between stories are kept, so the sample that is
30 hours older than the rest still shows the max-age rule. Usage: freshen.py SRC_DIR DEST_DIR

`make run` calls it first. When the demo's database beside DEST_DIR (var/alertbot.db) already
holds stories, the demo ran before and this run will send nothing: alertbot alerts a story once
per target, and re-dating does not make a story new. It says so, and how to start afresh.
"""

import json
import sqlite3
import sys
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

ALREADY_RAN = """\
The demo has already run here: {database} holds its stories, and alertbot alerts each story
only once per channel or reader, so this run sends nothing new (`.venv/bin/alertbot
deliveries` shows what the first run sent). To start afresh: make clean && make run
"""


def main(source: Path, dest: Path) -> None:
    files = sorted(source.glob("*.jsonl"))
    stories = {f: [json.loads(line) for line in f.read_text().splitlines() if line] for f in files}
    newest = max(datetime.fromisoformat(s["scored_at"]) for ss in stories.values() for s in ss)
    shift = datetime.now(UTC) - timedelta(minutes=5) - newest
    dest.mkdir(parents=True, exist_ok=True)
    for file, items in stories.items():
        for story in items:
            moved = datetime.fromisoformat(story["scored_at"]) + shift
            story["scored_at"] = moved.strftime("%Y-%m-%dT%H:%M:%SZ")
        lines = "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in items)
        (dest / file.name).write_text(lines, encoding="utf-8")


def already_ran(database: Path) -> bool:
    """Whether the demo's SQLite database exists and holds stories (read only)."""
    if not database.is_file():
        return False
    try:
        with closing(sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True)) as db:
            return bool(db.execute("SELECT EXISTS (SELECT 1 FROM stories)").fetchone()[0])
    except sqlite3.Error:  # no stories table yet (only `subscribers add` ran), or not SQLite
        return False


if __name__ == "__main__":
    target = Path(sys.argv[2])
    if already_ran(target.parent / "alertbot.db"):  # where `make run` keeps it: var/
        print(ALREADY_RAN.format(database=target.parent / "alertbot.db"), end="",
              file=sys.stderr)
    main(Path(sys.argv[1]), target)
