"""The `file` source: a .json/.jsonl file or a folder of them, re-read on each poll (SPEC §4)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from bot.stories import Batch, UnusableInput, parse_batch

log = logging.getLogger(__name__)
SUFFIXES = (".json", ".jsonl")


def files_of(path: Path) -> list[Path]:
    """The story files at `path`: the file itself, or the folder's .json/.jsonl files, sorted.

    A file in the folder that is a link to somewhere outside it is refused (said in the log):
    whoever can write to the drop folder must not make alertbot read other files.
    """
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
    """Yield each file with its parsed batch, or a sentence saying why it could not be used."""
    for file in files_of(path):
        try:
            yield file, parse_batch(file.read_bytes())
        except OSError as exc:
            yield file, f"cannot read {file}: {exc.strerror}"
        except UnusableInput as exc:
            yield file, f"{file}: {exc}"
