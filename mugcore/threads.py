"""CPU threads of a run (`--threads` of labelgen and trainer): a default that never puts more
threads on the machine than it has cores, and the check of a given number.

The networks here are small (LSTMs of 32 units, a 6-layer MiniLM). On a busy CPU, torch's
OpenMP threads spin while they wait for each other: on a 2-core machine shared with other jobs
a stage-3 step took 2.12 s with torch's default against 0.030 s with one thread (issue 18). So
the default counts the cores that are idle (the 1-minute load average says how many are
busy), shares them among the processes the run starts (torchrun's ranks on this machine), and
stays within MAX_DEFAULT, where more threads stop paying for these networks.
"""

import os

from mugcore.errors import UserError

MAX_DEFAULT = 4


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity mask, e.g. a container's limit)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def local_processes() -> int:
    """Processes of this run on this machine: torchrun's ranks here, else 1."""
    value = os.environ.get("LOCAL_WORLD_SIZE") or os.environ.get("WORLD_SIZE") or "1"
    return max(int(value), 1) if value.isdigit() else 1


def default_threads(processes: int | None = None) -> int:
    """Threads per process: the idle cores (cores minus the 1-minute load average, rounded
    down) shared among the processes, at most MAX_DEFAULT, at least 1."""
    processes = processes or local_processes()
    cores = usable_cores()
    idle = int(cores - os.getloadavg()[0]) if hasattr(os, "getloadavg") else cores
    return max(1, min(MAX_DEFAULT, idle // processes, cores // processes))


def resolve_threads(given: int | None, *, processes: int | None = None,
                    flag: str = "--threads") -> tuple[int, str]:
    """(threads per process, why): `given` checked, or the default. A number below 1 or one
    that puts more threads than cores on the machine is a UserError naming `flag`."""
    processes = processes or local_processes()
    cores = usable_cores()
    bound = max(cores // processes, 1)
    if given is None:
        n = default_threads(processes)
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
        return n, (f"{n} thread(s) per process: {cores} cores, load {load:.1f}, "
                   f"{processes} process(es); {flag} N to choose")
    if given < 1 or given > bound:
        raise UserError(f"{flag} must be between 1 and {bound} ({cores} cores shared by "
                        f"{processes} process(es)), got {given}")
    return given, f"{given} thread(s) per process ({flag})"


def apply_threads(n: int) -> None:
    """torch's intra-op threads of this process."""
    import torch  # here: the CLIs import this module before they need torch

    torch.set_num_threads(n)
