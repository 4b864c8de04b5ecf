"""What every benchmark prints with its figures: the machine, the load, and the yardstick.

The development machine is shared, so an absolute rate says little on its own.
Each benchmark measures, in its own process and just before its figures, how
many Ed25519 signatures one core verifies per second (PyNaCl, libsodium, on a
transfer-sized message): the floor of a validator's work per transaction. The
goals of issue 19 are expressed as ratios to that rate, which a busy machine
slows about as much as the ledger, so a ratio moves far less with the load than
a rate does. :func:`header` prints the date, the machine, the load average and
that rate; :func:`rss_mib` and :func:`cpu_seconds` read /proc.
"""

from __future__ import annotations

import os
import platform
import resource
import time
from datetime import UTC, datetime
from pathlib import Path

from ledger_core.types.crypto import SigningKey, verify

_MESSAGE = b'{"body":{"amount":1,"to":"tv' + b"0" * 40 + b'"},"chain_id":"bench-1",' + b"x" * 220


def verify_rate(seconds: float = 0.5) -> tuple[float, float]:
    """Signatures verified per second on this core: by wall time and by CPU time."""
    key = SigningKey.from_seed(b"\x07" * 32)
    public = key.public_key
    signature = key.sign(_MESSAGE)
    done = 0
    wall, cpu = time.perf_counter(), time.process_time()
    deadline = wall + seconds
    while time.perf_counter() < deadline:
        for _ in range(100):
            assert verify(public, signature, _MESSAGE)
        done += 100
    return done / (time.perf_counter() - wall), done / (time.process_time() - cpu)


def load_average() -> tuple[float, float, float]:
    """The 1-, 5- and 15-minute load averages."""
    return os.getloadavg()


def rss_mib(pid: int | None = None) -> float:
    """Resident memory of a process (default: this one), MiB."""
    path = Path(f"/proc/{pid or 'self'}/status")
    for line in path.read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # pragma: no cover


def peak_rss_mib(pid: int | None = None) -> float:
    """The highest resident memory a process has had, MiB."""
    path = Path(f"/proc/{pid or 'self'}/status")
    for line in path.read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # pragma: no cover


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def header(title: str, seconds: float = 0.5) -> tuple[float, float]:
    """Print the benchmark's context; return the verification rate (wall, CPU)."""
    wall, cpu = verify_rate(seconds)
    one, five, fifteen = load_average()
    print(f"## {title}\n")
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; Python {platform.python_version()} on "
        f"{platform.machine()}, {os.cpu_count()} CPUs; load average {one:.2f} / {five:.2f} / "
        f"{fifteen:.2f}"
    )
    print(
        f"Ed25519 verification in this process: {wall:,.0f}/s by wall time, {cpu:,.0f}/s by "
        f"CPU time ({1e6 / cpu:.0f} µs each)\n"
    )
    return wall, cpu


def footer(verify_before: tuple[float, float], seconds: float = 0.5) -> tuple[float, float]:
    """Measure the verification rate again and print both, so a drift in the load shows."""
    wall, cpu = verify_rate(seconds)
    one, five, fifteen = load_average()
    print(
        f"\nafterwards: load average {one:.2f} / {five:.2f} / {fifteen:.2f}; Ed25519 "
        f"{wall:,.0f}/s wall, {cpu:,.0f}/s CPU (before: {verify_before[0]:,.0f}, "
        f"{verify_before[1]:,.0f})"
    )
    return wall, cpu
