"""How busy the machine is with *other* work while we time something, and how many threads that
leaves us.

A latency measured while another process computes on the same cores is not the model's latency:
OpenMP threads wait on a busy core (CBR-Small at 64 px measured 5 ms on 1 thread and 75 ms on 2
threads while one training process shared the 2 cores). :class:`OtherLoad` measures, over a
block of code, the CPU time spent by everything except this process — ``/proc/stat``'s busy time
minus this process's own CPU time (all its threads, ONNX Runtime's included) — as a number of
cores; :func:`threads_for_load` picks an intra-op thread count those cores leave free.
Linux only: elsewhere the load is ``None`` (unknown) and nothing is adapted.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

_STAT = Path("/proc/stat")
# /proc/stat's first line: cpu user nice system idle iowait irq softirq steal guest guest_nice;
# busy = everything but idle and iowait (guest time is already inside user)
_BUSY_FIELDS = (0, 1, 2, 5, 6, 7)

#: other processes' cores (averaged over a measurement) from which a latency is flagged busy
BUSY_CORES = 0.5


def _busy_seconds() -> float | None:
    """CPU seconds all cores have spent busy since boot, or ``None`` without ``/proc/stat``."""
    try:
        first = _STAT.read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    if not first or first[0] != "cpu":
        return None
    ticks = [int(v) for v in first[1:]]
    return sum(ticks[i] for i in _BUSY_FIELDS if i < len(ticks)) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    t = os.times()
    return t.user + t.system


def cores() -> int:
    """Cores this process may run on (its CPU affinity where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class OtherLoad:
    """Context manager: the average number of cores other processes kept busy during the block
    (``.cores``, a float; ``None`` where ``/proc/stat`` is unavailable or the block was too short
    to tell, under 50 ms). Blocks can be nested or reused; each ``with`` measures afresh."""

    def __init__(self) -> None:
        self.cores: float | None = None
        self.seconds: float = 0.0

    def __enter__(self) -> OtherLoad:
        self._start = (time.monotonic(), _busy_seconds(), _own_seconds())
        return self

    def __exit__(self, *exc: object) -> None:
        wall0, busy0, own0 = self._start
        wall1, busy1, own1 = time.monotonic(), _busy_seconds(), _own_seconds()
        self.seconds = wall1 - wall0
        if busy0 is None or busy1 is None or self.seconds < 0.05:
            self.cores = None
            return
        # clock ticks are 10 ms: never below zero, never above the machine
        self.cores = min(max((busy1 - busy0 - (own1 - own0)) / self.seconds, 0.0), float(cores()))


def other_load(window_s: float = 0.25) -> float | None:
    """Cores other processes keep busy, sampled over ``window_s`` seconds of this process
    sleeping; ``None`` where it cannot be measured."""
    with OtherLoad() as load:
        time.sleep(window_s)
    return load.cores


def threads_for_load(wanted: int, other_cores: float | None, available: int | None = None) -> int:
    """An intra-op thread count for timing: ``wanted``, lowered to the cores that ``other_cores``
    (busy with other work) leave free, rounded to the nearest whole core, at least 1. An unknown
    load (``None``) leaves ``wanted`` as it is."""
    if other_cores is None:
        return max(1, int(wanted))
    free = (available if available is not None else cores()) - float(other_cores)
    return max(1, min(int(wanted), int(free + 0.5)))
