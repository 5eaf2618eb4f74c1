"""Copy the bundled sample stories with their times moved so the newest is five minutes old.

The samples are dated; alertbot never alerts on stories older than `max_alert_age` (24 h), so a
demo on any later day needs them re-dated. Gaps between stories are kept, so the sample that is
30 hours older than the rest still shows the max-age rule. Usage: freshen.py SRC_DIR DEST_DIR
"""

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path


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


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
