"""Run the suite under other time zones and at faked times of day (libfaketime).

    .venv/bin/python tests/run_at_times.py                  # all six runs, the whole suite
    .venv/bin/python tests/run_at_times.py -- tests/test_digests.py tests/test_replicas.py
    .venv/bin/python tests/run_at_times.py --only london-0230 --only tz-utc -- -x
    .venv/bin/python tests/run_at_times.py --list

Six runs, one after another (each is a whole `pytest -q`; the machine has 2 cores):

* tz-auckland, tz-los-angeles, tz-utc: `TZ` set for pytest and everything it starts (the
  `alertbot` children and the PostgreSQL server inherit it); the clock is the real one.
* london-0230, london-0645, london-2350: the clock moved so that the run starts at that time of
  day in Europe/London, by libfaketime (Debian package `faketime`: apt-get install faketime).

How the time is faked: LD_PRELOAD=libfaketime.so.1 with a *relative* offset, FAKETIME="+N" or
"-N" seconds (N = the nearest instant with that London wall time, minus now, at the start of
the run). The offset is the same in every process, so pytest, each `alertbot run` child, `initdb`,
`pg_ctl` and the PostgreSQL server it starts (all inherit the environment) agree on now(), and
the clock keeps ticking at its normal rate (23:50 passes local midnight during the run, as it
would). A "start at" time ("@2026-12-01 02:30:00") would restart at 02:30:00 in every new
process; a relative offset does not.

CLOCK_MONOTONIC is left real (FAKETIME_DONT_FAKE_MONOTONIC=1): libfaketime 0.9.10 (Debian 12/13)
fakes it as the shifted wall clock otherwise, and Python's lock and Event timeouts
(sem_clockwait on CLOCK_MONOTONIC, which it does not intercept) then wait for hours. With it
left real, libfaketime still shifts the deadline of clock_nanosleep(CLOCK_MONOTONIC,
TIMER_ABSTIME), which Python's time.sleep() uses: EINVAL, or a sleep of hours. So a small shim
(SHIM_C below, compiled here with cc into the logs folder) comes first in LD_PRELOAD and sends
monotonic clock_nanosleep straight to the kernel; every other clock goes on to libfaketime.
FAKETIME_FORCE_MONOTONIC_FIX=0: libfaketime's default "fix" for condition variables on the
monotonic clock cut Python's 5 ms GIL switch interval short, and the in-process tests ran 2-3
times slower (tests/test_digests.py: 39 s against 14 s); with it off they run at full speed.
Checked: time.sleep, threading.Event.wait, asyncio.sleep and subprocess waits take their real
durations, datetime.now() is shifted, and initdb/pg_ctl/postgres run under it (their now() is
shifted too, as the tests compare it with the processes'). PYTHONDONTWRITEBYTECODE=1:
libfaketime also shifts the mtimes stat() reports, so .pyc files written in a faked run would
look stale to everyone else sharing this checkout.

Exit status: 0 when every run passed. Each run's output goes to --logs (default: a new
temporary folder), and a summary line per run (exit code, seconds, pytest's last line) at the end.
"""

from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as wall_time
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
LONDON = ZoneInfo("Europe/London")
SHIM_C = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Monotonic sleeps go to the kernel as asked; other clocks to libfaketime (next in line). */
int clock_nanosleep(clockid_t clock, int flags, const struct timespec *request,
                    struct timespec *remain) {
    if (clock == CLOCK_MONOTONIC || clock == CLOCK_BOOTTIME) {
        long done = syscall(SYS_clock_nanosleep, clock, flags, request, remain);
        return done == 0 ? 0 : errno;
    }
    int (*next)(clockid_t, int, const struct timespec *, struct timespec *) =
        (int (*)(clockid_t, int, const struct timespec *, struct timespec *))
        dlsym(RTLD_NEXT, "clock_nanosleep");
    return next(clock, flags, request, remain);
}
"""


@dataclass(frozen=True)
class Run:
    name: str
    env: dict[str, str] = field(default_factory=dict)
    london: str | None = None  # HH:MM: fake the clock so the run starts then in London


RUNS = [
    Run("tz-auckland", {"TZ": "Pacific/Auckland"}),
    Run("tz-los-angeles", {"TZ": "America/Los_Angeles"}),
    Run("tz-utc", {"TZ": "UTC"}),
    Run("london-0230", london="02:30"),
    Run("london-0645", london="06:45"),
    Run("london-2350", london="23:50"),
]


def libfaketime() -> str:
    """The path of libfaketime.so.1 (Debian: /usr/lib/<arch>/faketime/)."""
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1")
                   + glob.glob("/usr/lib/faketime/libfaketime.so.1")
                   + glob.glob("/usr/local/lib/faketime/libfaketime.so.1"))
    if not found:
        sys.exit("libfaketime.so.1 not found: apt-get install -y faketime")
    return found[0]


def monotonic_shim(folder: Path) -> str:
    """Compile SHIM_C into `folder`; return the shared object's path."""
    source, shared = folder / "monotonic_sleep.c", folder / "monotonic_sleep.so"
    source.write_text(SHIM_C)
    built = subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", str(shared), str(source),
                            "-ldl"], capture_output=True, text=True)
    if built.returncode != 0:
        sys.exit(f"could not build the clock_nanosleep shim (needs cc):\n{built.stderr}")
    return str(shared)


def offset_to(london: str, now: datetime) -> int:
    """Seconds from `now` to the nearest instant whose Europe/London wall time is `london`."""
    local = now.astimezone(LONDON)
    wall = wall_time.fromisoformat(london)
    candidates = [datetime.combine(local.date() + timedelta(days=d), wall, tzinfo=LONDON)
                  for d in (-1, 0, 1)]
    nearest = min(candidates, key=lambda at: abs((at - now).total_seconds()))
    return round((nearest - now).total_seconds())


def environment(run: Run, now: datetime, shim: str) -> tuple[dict[str, str], str]:
    """The run's environment, and a description of its clock."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **run.env}
    if run.london is None:
        return env, f"TZ={env.get('TZ', '(unset)')}, real clock"
    offset = offset_to(run.london, now)
    preload = " ".join(p for p in (shim, libfaketime(), env.get("LD_PRELOAD", "")) if p)
    env.update(LD_PRELOAD=preload, FAKETIME=f"{offset:+d}", FAKETIME_DONT_FAKE_MONOTONIC="1",
               FAKETIME_FORCE_MONOTONIC_FIX="0")
    return env, f"FAKETIME={offset:+d} s: starts at {run.london} Europe/London"


PROBE = """
import asyncio, threading, time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo
started = time.monotonic()
time.sleep(0.05)
threading.Event().wait(0.05)
asyncio.run(asyncio.sleep(0.05))
took = time.monotonic() - started
assert 0.14 < took < 2, f"sleeps of 0.15 s took {took:.3f} s"
now = datetime.now(UTC)
print(f"{now:%Y-%m-%d %H:%M:%S} UTC = {now.astimezone(ZoneInfo('Europe/London')):%H:%M} in "
      f"London; sleeps, waits and asyncio timers real ({took:.2f} s for 0.15 s)")
"""


def faked_now(env: dict[str, str]) -> str:
    """What a child process of this environment believes the time is, after checking that its
    sleeps and timeouts last what they should (proves the fake and the shim)."""
    probe = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                           text=True, timeout=30)
    if probe.returncode != 0:
        sys.exit(f"the clock does not work under this environment:\n{probe.stderr}")
    return probe.stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", choices=[r.name for r in RUNS],
                        help="run only these (repeatable); default: all six")
    parser.add_argument("--logs", type=Path, help="folder for each run's output")
    parser.add_argument("--list", action="store_true", help="list the runs and exit")
    parser.add_argument("pytest_args", nargs="*", help="after --: arguments for pytest")
    args = parser.parse_args()
    runs = [r for r in RUNS if not args.only or r.name in args.only]
    if args.list:
        for run in runs:
            print(run.name, environment(run, datetime.now(UTC), "")[1])
        return 0
    logs = args.logs or Path(tempfile.mkdtemp(prefix="alertbot-times-"))
    logs.mkdir(parents=True, exist_ok=True)
    shim = monotonic_shim(logs) if any(run.london for run in runs) else ""
    pytest = [str(ROOT / ".venv" / "bin" / "pytest"), "-q", "-p", "no:cacheprovider",
              *args.pytest_args]
    results: list[tuple[str, int, float, str]] = []
    for run in runs:
        env, clock = environment(run, datetime.now(UTC), shim)
        log = logs / f"{run.name}.log"
        print(f"== {run.name}: {clock}; the children see {faked_now(env)}; log {log}",
              flush=True)
        started = time.monotonic()
        with log.open("w") as out:
            code = subprocess.run(pytest, env=env, cwd=ROOT, stdout=out,
                                  stderr=subprocess.STDOUT).returncode
        took = time.monotonic() - started
        lines = log.read_text(errors="replace").strip().splitlines()
        results.append((run.name, code, took, lines[-1] if lines else ""))
        print(f"   exit {code} in {took:.0f} s: {results[-1][3]}", flush=True)
    print("\nsummary:")
    for name, code, took, last in results:
        print(f"  {name:15} exit {code}  {took:6.0f} s  {last}")
    return 0 if all(code == 0 for _, code, _, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
