"""The `file` source: a .json/.jsonl file or a folder of them, re-read on each poll (SPEC §4)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from bot.stories import Batch, UnusableInput, parse_batch

SUFFIXES = (".json", ".jsonl")


def files_of(path: Path) -> list[Path]:
    """The story files at `path`: the file itself, or the folder's .json/.jsonl files, sorted."""
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in SUFFIXES and p.is_file())
    return [path]


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
