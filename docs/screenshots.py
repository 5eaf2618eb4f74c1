"""Render a daily digest from the bundled samples and photograph it in headless Chromium.

    .venv/bin/python docs/screenshots.py     # writes docs/img/digest-{600,375,375-dark}.png
                                             # and docs/img/preferences-{600,375}.png

The HTML is what `Renderer` produces for a subscriber (the same code the workers send), so the
pictures show the real email at a desktop client's 600 px and a phone's 375 px. The preference
center is the page the HTTP server renders (`templates/web/preferences.html`) for a sample reader.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bot.messages import Entry, Load, Renderer  # noqa: E402
from bot.messages.mail import Outgoing  # noqa: E402
from bot.rules.gate import corroborate, gate, global_thresholds  # noqa: E402
from bot.settings import Config, DeskConfig, Settings  # noqa: E402
from bot.stories.parsing import parse_batch  # noqa: E402

# (file, width, height, dark): the height is the window's, sized to the sample digest.
SHOTS = (("digest-600.png", 600, 1180, False), ("digest-375.png", 375, 1520, False),
         ("digest-375-dark.png", 375, 1520, True))
PREFERENCE_SHOTS = (("preferences-600.png", 600, 1020, False),
                    ("preferences-375.png", 375, 1120, False))


def preferences_html() -> str:
    from bot.messages.render import page_env
    from bot.readers.subscribers import validate
    from bot.web.preferences import guess_script, zones

    reader = validate("reader@desk.example", "both", "Europe/Berlin", ["launch", "budget"],
                      "07:30")
    return page_env().get_template("preferences.html").render(
        outcome="form", reader=reader, zones=zones(), script=guess_script(), error="",
        saved=True, csrf="sample")


def digest_html() -> str:
    config = Config(Settings.model_validate({"public_url": "https://alerts.desk.example",
                                             "email_from": "Desk <alerts@desk.example>"}),
                    DeskConfig(), None)
    batch = parse_batch((REPO / "samples" / "stories.jsonl").read_bytes())
    limits = global_thresholds(config.desk.rules)
    items = [s for s in batch.stories if gate(s.impact, corroborate(s).count, limits).qualifies]
    items.sort(key=lambda s: (-s.impact, -corroborate(s).count))
    chosen = items[:5]
    now = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)
    details = {"date": "2026-11-27", "since": (now - timedelta(days=1)).isoformat(),
               "timezone": "Europe/London", "stories": [s.id for s in chosen],
               "alerted": [chosen[1].id]}
    load = Load([Entry(s.id, "", s.model_dump_json()) for s in chosen])
    message = Renderer(config, b"screenshot-key").render(
        "daily", "email", "email:editor@desk.example", details, load, now)
    if isinstance(message, Outgoing):  # a daily digest usually comes already serialized
        message = message.parsed()
    part = message.get_body(("html",))
    return str(part.get_content())


def main() -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        sys.exit("needs Chromium (Debian: apt-get install chromium)")
    out = REPO / "docs" / "img"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        digest = Path(tmp) / "digest.html"
        digest.write_text(digest_html(), encoding="utf-8")
        preferences = Path(tmp) / "preferences.html"
        preferences.write_text(preferences_html(), encoding="utf-8")
        shots = ([(digest, *shot) for shot in SHOTS]
                 + [(preferences, *shot) for shot in PREFERENCE_SHOTS])
        for page, name, width, height, dark in shots:
            flags = ["--blink-settings=preferredColorScheme=0"] if dark else []
            subprocess.run([
                browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                "--no-first-run", "--disable-background-networking", "--disable-sync",
                "--disable-component-update", f"--user-data-dir={tmp}/profile",
                f"--window-size={width},{height}", f"--screenshot={out / name}", *flags,
                page.as_uri(),
            ], check=True, capture_output=True, timeout=60)
            print(f"wrote {out / name}")


if __name__ == "__main__":
    main()
