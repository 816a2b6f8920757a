"""How many torch threads a call uses: sized to the work and to the free cores.

torch runs every operation on a team of threads (by default one per core) that
meet at a barrier after it. On a machine where another process keeps a core
busy, a team member that waits for a core holds up all the others at every
barrier: on 2 cores with one busy, default fits on 2 threads took 3.7-4.3 times
as long as on 1 (1.35 times on MNIST), while on the idle machine 2 threads were
1.2-1.6 times faster (``benchmarks/threads.py``). And on tiny networks the
meetings cost more than a team saves, the more so the larger the team: BLAS
libraries keep small problems on one thread for that reason.

``n_threads="auto"`` therefore gives a call as many threads as there are cores
free of other processes' runnable threads (read from ``/proc`` on Linux; elsewhere
every core counts as free), and one thread per ``PARALLEL_WORK`` multiply-adds of
one operation (rows times the network's weights) at most: one on tiny networks.
An int fixes the number; None leaves torch's setting alone. The caller's setting
is restored afterwards, in each thread that makes a call.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from numbers import Integral
from typing import Any

import torch
from torch import nn

# Multiply-adds of one operation (rows x weights of the network) per thread of a
# team. On an idle 2-core machine (``benchmarks/threads.py``) a second thread
# paid from a batch of 256 rows of a 12-column table (1.9e7; 1.03-1.25 times
# faster over three runs) and of 256 digits (2.6e7; 1.13-1.22) up to a batch of
# 512 MNIST images (2.4e8; 1.25); below about 1e7 a step takes well under a
# millisecond, which the team's meetings would eat. The cap on larger teams (a
# thread per 1e7) is not measured beyond 2 cores.
PARALLEL_WORK = 1e7

# torch's setting (OpenMP's) belongs to each thread, and a new thread starts from
# the last value set anywhere: each call saves and restores its own thread's, and
# a call inside another skvae call of the same thread (a partition of a dask
# transform, a callback's transform during training) keeps the outer setting.
_local = threading.local()


def network_weights(module: nn.Module) -> int:
    """Count the weights of the module's linear layers: multiply-adds per row."""
    return sum(m.weight.numel() for m in module.modules() if isinstance(m, nn.Linear))


def choose_threads(setting: Any, work: float) -> int | None:
    """Return the thread count for an operation of ``work`` multiply-adds.

    ``setting`` is the estimator's ``n_threads``: an int is taken as it is,
    None leaves torch's setting (returns None), ``"auto"`` sizes it (see the
    module's docstring). Inside another skvae call of the same thread: None.
    """
    if setting is None or getattr(_local, "saved", None) is not None:
        return None  # torch's setting, or that of the skvae call around this one
    if setting != "auto":
        # fit validates the parameter, but a set_params after it reaches here
        if isinstance(setting, bool) or not (
            isinstance(setting, Integral) and setting >= 1
        ):
            raise ValueError(
                f"n_threads must be an int >= 1, 'auto' or None; got {setting!r}."
            )
        return int(setting)
    if work < PARALLEL_WORK:
        return 1
    limit = caller_threads()
    if limit <= 1:
        return 1
    return max(1, min(limit, free_cores(limit), int(work // PARALLEL_WORK) + 1))


def caller_threads() -> int:
    """Torch's thread count as this thread's caller set it."""
    saved = getattr(_local, "saved", None)
    return torch.get_num_threads() if saved is None else saved


def free_cores(limit: int) -> int:
    """Cores of this process's affinity that no other process's thread wants.

    Linux's ``/proc/loadavg`` counts the runnable threads of the machine; less
    this process's own (``/proc/self/task/*/stat``), the rest are other
    processes' threads, which a team of ours would share cores with. The counts
    are instantaneous: read three times, 1 ms apart, the smallest is taken, since
    another process that keeps a core busy is there every time, while a thread
    of ours that stops between the two reads looks like someone else's once.
    The reading (about 3 ms) stands for ``PROBE_SECONDS``, so that calls in a
    loop (a transform per batch) do not each pay it. Without ``/proc``, every
    core counts as free.
    """
    global _probe
    now = time.monotonic()
    taken, free = _probe
    if now - taken > PROBE_SECONDS:
        free = _probe_free_cores()
        _probe = (now, free)
    return max(1, min(limit, free))


# Seconds a reading of the free cores stands: a call may start from a reading up
# to this old (a call keeps its thread count to its end, as it always did).
PROBE_SECONDS = 0.1
_probe: tuple[float, int] = (-float("inf"), 0)


def _forget_probe() -> None:
    """Drop the reading: a forked child's own threads are not its parent's."""
    global _probe
    _probe = (-float("inf"), 0)


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_forget_probe)


def _probe_free_cores() -> int:
    """Read the free cores now (see ``free_cores``)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    counts = []
    for i in range(3):
        others = _others_running()
        if others is None:
            return cores
        counts.append(others)
        if i < 2:
            threading.Event().wait(0.001)
    return max(1, cores - min(counts))


def _own_running() -> int:
    """Count this process's runnable threads now."""
    running = 0
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/stat") as f:
                stat = f.read()
        except OSError:  # the thread ended meanwhile
            continue
        # The state follows the command name, which may hold spaces: ") R ".
        if stat[stat.rindex(")") + 2] == "R":
            running += 1
    return running


def _others_running() -> int | None:
    """Runnable threads of other processes now; None where ``/proc`` is not."""
    try:
        before = _own_running()
        with open("/proc/loadavg") as f:
            running = int(f.read().split()[3].split("/")[0])
        ours = max(before, _own_running())  # ours on either side of the count
        return max(running - ours, 0)
    except (OSError, ValueError, IndexError):
        return None


@contextmanager
def torch_threads(n_threads: int | None) -> Iterator[None]:
    """Run the block with ``n_threads`` torch threads (None: as they are).

    The calling thread's setting is restored afterwards. Inside another
    ``torch_threads`` block of the same thread, the outer setting stands.
    """
    if getattr(_local, "saved", None) is not None:
        yield
        return
    saved = torch.get_num_threads()
    _local.saved = saved
    try:
        if n_threads is not None and n_threads != saved:
            torch.set_num_threads(n_threads)
        yield
    finally:
        if torch.get_num_threads() != saved:
            torch.set_num_threads(saved)
        _local.saved = None


def training_threads(setting: Any, module: nn.Module, batch_size: int) -> int | None:
    """Return the threads of training ``module`` on mini-batches of ``batch_size``."""
    return choose_threads(setting, batch_size * network_weights(module))


def used_threads(n_threads: int | None) -> int:
    """Return what a call with ``n_threads`` (None: torch's setting) runs on."""
    return torch.get_num_threads() if n_threads is None else n_threads


def sized_threads(setting: Any, module: nn.Module, rows: int) -> Any:
    """``torch_threads`` for operations on ``rows`` rows through ``module``."""
    return torch_threads(choose_threads(setting, rows * network_weights(module)))
