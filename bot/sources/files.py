"""The `file` source: a .json/.jsonl file or a folder of them, re-read on each poll.

A source whose path does not exist yet is normal (a volume mounted later, a drop folder made
by another job): it reads as empty, said once with a warning when it is first found missing
and once (info) when it appears, rather than as an error on every poll.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

from bot.stories.parsing import Batch, Chunks, UnusableInput, parse_batch

log = logging.getLogger(__name__)
SUFFIXES = (".json", ".jsonl")

# Source paths last seen missing, so each absence and each return is logged once. Shared by
# the whole process: `Service` polls through the module functions.
_missing: set[Path] = set()
_missing_lock = threading.Lock()


def files_of(path: Path) -> list[Path]:
    """The story files at `path`: the file itself, or the folder's .json/.jsonl files, sorted;
    none while `path` does not exist.

    A file in the folder that is a link to somewhere outside it is refused (said in the log):
    whoever can write to the drop folder must not make alertbot read other files.
    """
    if not _present(path):
        return []
    return _listing(path)


def _present(path: Path) -> bool:
    """Whether `path` exists, logging only the changes: missing, then there again."""
    exists = path.exists()
    with _missing_lock:
        if not exists and path not in _missing:
            _missing.add(path)
            log.warning("file source %s does not exist (yet): nothing to read until it "
                        "appears; polling goes on", path)
        elif exists and path in _missing:
            _missing.discard(path)
            log.info("file source %s exists now: reading it", path)
    return exists


def _listing(path: Path) -> list[Path]:
    if not path.is_dir():
        return [path]
    folder = path.resolve()
    found = []
    for candidate in sorted(p for p in path.iterdir() if p.suffix in SUFFIXES and p.is_file()):
        if not candidate.resolve().is_relative_to(folder):
            log.warning("file source %s: refused %s, a link to %s outside the folder", path,
                        candidate.name, candidate.resolve())
            continue
        found.append(candidate)
    return found


def read_all(path: Path) -> list[tuple[Path, Batch | str]]:
    """`read`, all at once (for a worker thread)."""
    return list(read(path))


def read(path: Path) -> Iterator[tuple[Path, Batch | str]]:
    """Yield each file with its parsed batch, or a sentence saying why it could not be used.

    A file that vanished since it was listed is a read error here, not a missing source.
    """
    for file in _listing(path):
        try:
            yield file, parse_batch(file.read_bytes())
        except OSError as exc:
            yield file, f"cannot read {file}: {exc.strerror}"
        except UnusableInput as exc:
            yield file, f"{file}: {exc}"


def open_all(path: Path) -> list[tuple[Path, Chunks | str]]:
    """`read_all`, with each file's stories left to parse a chunk at a time (`Chunks`): the
    pipeline parses and stores one chunk after another, so a large file's stories are not
    all alive at once. A file whose whole is unusable is a sentence here already."""
    opened: list[tuple[Path, Chunks | str]] = []
    for file in _listing(path):
        try:
            opened.append((file, Chunks(file.read_bytes())))
        except OSError as exc:
            opened.append((file, f"cannot read {file}: {exc.strerror}"))
        except UnusableInput as exc:
            opened.append((file, f"{file}: {exc}"))
    return opened
