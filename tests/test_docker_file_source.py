"""A file source whose folder is not there yet (a volume mounted later) is polled quietly: one
warning, not an error on every poll, and one line when it appears, after which it is read."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.service import Service
from bot.sources import files
from tests.conftest import make_config, story


@pytest.fixture
async def service(tmp_path: Path, sqlite_url: str) -> AsyncIterator[Service]:
    config = make_config(tmp_path, sqlite_url, {
        "sources": [{"kind": "file", "path": str(tmp_path / "inbox")}],
        "slack": {"pacing": "0s", "routes": [{"channel": "C0SPACEOPS"}]},
    })
    running = Service(config)
    yield running
    await running.close()


def about(records: list[logging.LogRecord], path: Path) -> list[logging.LogRecord]:
    return [r for r in records if str(path) in r.getMessage()]


async def test_a_missing_folder_warns_once_then_is_read_when_it_appears(
    service: Service, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    inbox = tmp_path / "inbox"
    caplog.set_level(logging.INFO)
    for _ in range(5):
        report = await service.poll(0, only_changed=False)
        assert report.accepted == []
    said = about(caplog.records, inbox)
    assert [(r.levelname, r.name) for r in said] == [("WARNING", "bot.sources.files")]
    assert "does not exist (yet)" in said[0].getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]

    caplog.clear()
    inbox.mkdir()
    (inbox / "first.json").write_text(json.dumps(story(id="arrived")))
    report = await service.poll(0, only_changed=False)
    assert report.accepted == ["arrived"]
    await service.poll(0, only_changed=False)
    appeared = [r for r in about(caplog.records, inbox) if "exists now" in r.getMessage()]
    assert len(appeared) == 1 and appeared[0].levelname == "INFO"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_folder_that_goes_away_and_returns_is_said_once_each_time(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    inbox = tmp_path / "mount"
    caplog.set_level(logging.INFO, logger="bot.sources.files")
    inbox.mkdir()
    (inbox / "a.jsonl").write_text(json.dumps(story(id="a")))
    assert files.files_of(inbox) == [inbox / "a.jsonl"]
    (inbox / "a.jsonl").unlink()
    inbox.rmdir()  # the volume is unmounted
    assert [files.files_of(inbox) for _ in range(3)] == [[], [], []]
    inbox.mkdir()
    assert files.files_of(inbox) == [] and files.files_of(inbox) == []
    inbox.rmdir()
    assert files.files_of(inbox) == []
    said = [(r.levelname, "missing" if "does not exist" in r.getMessage() else "back")
            for r in about(caplog.records, inbox)]
    assert said == [("WARNING", "missing"), ("INFO", "back"), ("WARNING", "missing")]


def test_a_single_file_source_that_is_missing_is_not_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    feed = tmp_path / "feed.jsonl"
    assert files.files_of(feed) == []  # before: [feed], and the service's stat failed each poll
    feed.write_text(json.dumps(story(id="f")))
    assert files.files_of(feed) == [feed]
    [(path, batch)] = files.read_all(feed)
    assert path == feed and not isinstance(batch, str)
    assert [s.id for s in batch.stories] == ["f"]
