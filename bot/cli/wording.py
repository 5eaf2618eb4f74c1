"""What the commands say at length, rendered from templates/cli/ (as the Slack and email
wording is rendered from templates/slack/ and templates/email/).

Jinja2 is imported when a command renders, not at the top: `alertbot --help` and the listings
do not load it (tests/test_cli_startup.py).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jinja2 import Environment


def templates_dir() -> Path:
    """The templates shipped in the wheel (bot/templates), else the repository's top level
    (as bot/messages/render.py finds them)."""
    package = Path(__file__).parents[1]  # bot/
    packaged = package / "templates"
    return packaged if packaged.is_dir() else package.parent / "templates"


@cache
def _environment() -> Environment:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    return Environment(loader=FileSystemLoader(templates_dir() / "cli"), autoescape=False,
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def render(name: str, **context: Any) -> str:
    """The text of templates/cli/`name`, without the final newline (click.echo adds one)."""
    return _environment().get_template(name).render(**context).removesuffix("\n")
