"""The image's build files, checked without a Docker engine (none runs here to build it):
a pinned base, locked dependencies, a health check that follows the port, and a shipped config
that starts clean in the image's layout."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.utils import canonicalize_name

from tests.conftest import story
from tests.fakes import free_port

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()
RUNTIME_LOCK = ROOT / "requirements" / "runtime.txt"
DEV_LOCK = ROOT / "requirements" / "dev.txt"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(
        line for line in DOCKERFILE.splitlines() if not line.lstrip().startswith("#")))
    found = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def test_every_stage_starts_from_one_base_pinned_by_digest() -> None:
    bases = [args.split()[0] for word, args in instructions() if word == "FROM"]
    assert len(bases) == 2
    for base in bases:
        assert re.fullmatch(r"python:3\.11-slim@sha256:[0-9a-f]{64}", base), base
    assert len(set(bases)) == 1  # build and run stages on the same Python


# -- the health check --------------------------------------------------------------------------


def healthcheck_command() -> list[str]:
    [args] = [args for word, args in instructions() if word == "HEALTHCHECK"]
    command: list[str] = json.loads(args[args.index("CMD") + 3:])
    return command


@pytest.fixture
def healthz() -> Iterator[int]:
    """A server answering GET /healthz on a free port, as alertbot does."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/healthz" else 404)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def run_healthcheck(port: int | None) -> int:
    command = healthcheck_command()
    assert command[0] == "python"
    env = {k: v for k, v in os.environ.items() if k != "ALERTBOT_HTTP_PORT"}
    if port is not None:
        env["ALERTBOT_HTTP_PORT"] = str(port)
    return subprocess.run([sys.executable, *command[1:]], env=env, capture_output=True,
                          timeout=20).returncode


def test_the_health_check_follows_alertbot_http_port(healthz: int) -> None:
    assert "ALERTBOT_HTTP_PORT" in " ".join(healthcheck_command())
    assert run_healthcheck(healthz) == 0
    assert run_healthcheck(free_port()) != 0  # nothing listens there: unhealthy


def test_the_image_listens_where_its_health_check_asks() -> None:
    env = dict(re.findall(r"(\w+)=(\S+)", " ".join(
        args for word, args in instructions() if word == "ENV")))
    assert env["ALERTBOT_HTTP_HOST"] == "0.0.0.0" and env["ALERTBOT_HTTP_PORT"] == "8000"
    assert [args for word, args in instructions() if word == "EXPOSE"] == ["8000"]


# -- locked dependencies ----------------------------------------------------------------------


def locked(path: Path) -> dict[str, tuple[str, Marker | None, int]]:
    """name -> (version, marker, number of hashes) for every entry of a lock file."""
    text = re.sub(r"\\\n", " ", path.read_text())
    entries = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        spec, hashes = line.split("--hash=", 1)[0], line.count("--hash=sha256:")
        requirement, _, marker = spec.partition(";")
        name, separator, version = requirement.strip().partition("==")
        assert separator and version, f"{path.name}: not pinned: {line[:80]}"
        entries[canonicalize_name(name)] = (version.strip(),
                                            Marker(marker) if marker.strip() else None, hashes)
    return entries


def declared(group: str | None) -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = project["dependencies"] if group is None else project["optional-dependencies"][group]
    return {canonicalize_name(re.split(r"[\s\[<>=!;~]", item, maxsplit=1)[0]) for item in listed}


def test_the_locks_pin_and_hash_every_dependency_of_pyproject() -> None:
    runtime, dev = locked(RUNTIME_LOCK), locked(DEV_LOCK)
    assert all(hashes > 0 for _, _, hashes in (*runtime.values(), *dev.values()))
    relock = "pyproject.toml names a package the lock lacks: run `make lock`"
    assert declared(None) - set(runtime) == set(), relock
    assert (declared(None) | declared("dev")) - set(dev) == set(), relock
    # The dev lock is the runtime lock plus the dev tools, at the same versions.
    assert {name: runtime[name][0] for name in runtime} == {name: dev[name][0] for name in runtime}
    assert not declared("dev") & set(runtime)  # no test tool in the image


def test_this_environment_is_exactly_the_dev_lock() -> None:
    # What `make test` (and so CI) runs on: the Makefile installs the dev lock into the venv.
    mismatched = {}
    for name, (version, marker, _) in locked(DEV_LOCK).items():
        if marker is not None and not marker.evaluate():
            continue
        installed = metadata.version(name)
        if installed != version:
            mismatched[name] = (installed, version)
    assert mismatched == {}, "re-run `make` (the lock changed) or `make lock` (pyproject did)"


def test_the_image_and_the_venv_install_from_the_locks() -> None:
    runs = [args for word, args in instructions() if word == "RUN"]
    assert any("--require-hashes -r requirements/runtime.txt" in r for r in runs)
    assert any("--no-deps ." in r for r in runs)  # alertbot itself adds nothing unlocked
    assert ("COPY", "requirements/runtime.txt ./requirements/") in instructions()
    makefile = (ROOT / "Makefile").read_text()
    stamp = re.search(r"^\$\(STAMP\): (.*)\n((?:\t.*\n)+)", makefile, re.M)
    assert stamp is not None
    assert "$(DEV_LOCK)" in stamp.group(1)  # a changed lock re-installs
    assert "--require-hashes -r $(DEV_LOCK)" in stamp.group(2)
    assert "--no-deps -e ." in stamp.group(2)
    assert "DEV_LOCK := requirements/dev.txt" in makefile


# -- the shipped config -----------------------------------------------------------------------


def test_the_image_ships_its_own_config_and_creates_its_inbox() -> None:
    steps = instructions()
    assert ("WORKDIR", "/app") in steps
    assert ("COPY", "config/docker.toml ./config/alertbot.toml") in steps
    assert any(word == "RUN" and "mkdir -p /app/var/inbox" in args for word, args in steps)


def test_the_shipped_config_starts_clean_and_reads_its_inbox(tmp_path: Path) -> None:
    # /app as the image lays it out: the config where the image copies it, the inbox it makes.
    app = tmp_path / "app"
    (app / "config").mkdir(parents=True)
    shutil.copy(ROOT / "config" / "docker.toml", app / "config" / "alertbot.toml")
    (app / "var" / "inbox").mkdir(parents=True)
    (app / "var" / "inbox" / "story.json").write_text(json.dumps(story(id="dropped")))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTBOT_")}
    result = subprocess.run([sys.executable, "-m", "bot", "check"], cwd=app, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("1 stored, 0 rejected"), result.stdout
    levels = {json.loads(line)["level"] for line in result.stderr.splitlines() if line}
    assert not levels & {"error", "critical"}, result.stderr
    assert "does not exist" not in result.stderr
    assert (app / "var" / "alertbot.db").exists()
