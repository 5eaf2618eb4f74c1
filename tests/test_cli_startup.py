"""The command line starts at once: `--help`, `--version` and the listings leave the service out.

A command that loads Bolt, uvicorn and aiohttp took over two seconds to print its help. These
tests look at what a command imported, never at the clock, so a slow machine cannot fail them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.process import Alertbot

# What only `run`, `check`, `ingest`, `digest send`, `test` and `preview` need.
SERVICE = ("slack_bolt", "slack_sdk", "uvicorn", "aiohttp", "apscheduler", "starlette",
           "bot.service", "jinja2", "aiosmtplib")
# What a listing needs but `--help` and `--version` do not.
DATA = ("sqlalchemy", "alembic", "pydantic", "bot.settings", "bot.db")

# Runs the real CLI in a fresh interpreter and writes, as it exits, the modules it imported.
PROBE = """
import atexit, json, os, sys
atexit.register(lambda: open(os.environ["MODULES_OUT"], "w").write(json.dumps(list(sys.modules))))
from bot.cli import main
main(prog_name="alertbot")
"""


def loaded(names: list[str], families: tuple[str, ...]) -> list[str]:
    """The modules of `families` (a package and everything under it) among `names`."""
    return sorted(n for n in names
                  if n in families or n.startswith(tuple(f + "." for f in families)))


def imported_by(bot: Alertbot, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    out = bot.tmp / "modules.json"
    result = subprocess.run([sys.executable, "-c", PROBE, *args], env={
        **bot.env, "MODULES_OUT": str(out)}, cwd=bot.tmp, capture_output=True, text=True,
        timeout=120)
    return result, json.loads(out.read_text())


def test_importing_the_cli_imports_none_of_the_service() -> None:
    result = subprocess.run([sys.executable, "-c", "import bot.cli, json, sys; "
                             "print(json.dumps(list(sys.modules)))"],
                            capture_output=True, text=True, check=True, timeout=120)
    modules = json.loads(result.stdout)
    assert "bot.cli.core" in modules  # the commands are registered: this is the real CLI
    assert loaded(modules, SERVICE + DATA) == []


@pytest.mark.parametrize("args", [("--help",), ("--version",), ("deliveries", "--help"),
                                  ("subscribers", "--help"), ("config", "--help"),
                                  ("preview", "--help"), ("run", "--help")])
def test_help_and_version_load_neither_the_service_nor_the_database(
    tmp_path: Path, args: tuple[str, ...],
) -> None:
    result, modules = imported_by(Alertbot.make(tmp_path, ""), *args)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(("Usage: alertbot", "alertbot "))
    assert loaded(modules, SERVICE + DATA) == []


@pytest.mark.parametrize("args", [("config", "check"), ("subscribers", "list"), ("deliveries",),
                                  ("stories", "rejected"), ("story", "nope")])
def test_light_commands_leave_the_service_out(tmp_path: Path, args: tuple[str, ...]) -> None:
    result, modules = imported_by(Alertbot.make(tmp_path, ""), *args)
    assert "Traceback" not in result.stderr
    assert result.returncode == (1 if args[0] == "story" else 0), result.stderr
    assert loaded(modules, SERVICE) == []


def test_config_check_needs_no_database_library(tmp_path: Path) -> None:
    """It only reads settings: the password masking does not need SQLAlchemy either."""
    result, modules = imported_by(Alertbot.make(tmp_path, ""), "config", "check")
    assert result.returncode == 0, result.stderr
    assert loaded(modules, ("sqlalchemy", "alembic", "bot.db")) == []


def test_version_is_the_installed_package_version() -> None:
    script = Path(sys.executable).parent / "alertbot"  # the real entry point, as README runs it
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"alertbot {version('alertbot')}\n"
    assert result.stdout.split()[1][0].isdigit()
