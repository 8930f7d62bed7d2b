"""What `labelgen run` and `trainer run` show while they work: one progress bar whose text says
where the run is (stage, run k of n, fold j of K, epoch) with the time left for all of it, and
the estimate of the total, told once before the long work, with a warning naming faster
choices when it is above an hour on a CPU."""

import sys
import time
from collections.abc import Sequence

from tqdm import tqdm

HOUR_S = 3600.0
LOG_EVERY_S = 60.0  # a plain line this often where no bar can show (stderr is not a terminal)


def duration(seconds: float) -> str:
    """'1 h 05 min', '12 min 30 s', '45 s'."""
    s = max(int(round(seconds)), 0)
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    if s >= 60:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s} s"


class Bar:
    """One bar for the whole command, or off when `enabled` is false. Where stderr is not a
    terminal (a log) there is no bar (tqdm's disable=None) but a plain line every LOG_EVERY_S,
    so that a log of a long run still says where it is."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: tqdm | None = None
        self.logged = time.monotonic()

    def update(self, where: str, fraction: float, eta_s: float | None) -> None:
        if not self.enabled:
            return
        if not sys.stderr.isatty():
            if time.monotonic() - self.logged >= LOG_EVERY_S:
                self.logged = time.monotonic()
                left = f", {duration(eta_s)} left" if eta_s is not None else ""
                print(f"{where}: {fraction:.0%}{left}", file=sys.stderr, flush=True)
            return
        if self.bar is None:
            self.bar = tqdm(total=1000, disable=None, leave=True,
                            bar_format="{desc} {percentage:3.0f}%|{bar}| {elapsed}{postfix}")
        self.bar.set_description_str(where, refresh=False)
        self.bar.set_postfix_str(f"{duration(eta_s)} left" if eta_s is not None else
                                 "timing the first steps", refresh=False)
        self.bar.update(max(round(fraction * 1000) - self.bar.n, 0))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def tell_estimate(total_s: float, *, gpu: bool, basis: str, faster: Sequence[str],
                  extra: str = "") -> None:
    """The estimate of the whole command on stderr; above an hour on a CPU, the faster
    choices too."""
    # tqdm.write: above any bar that is showing, not through it
    tqdm.write(f"estimated total: {duration(total_s)} ({basis}){extra}", file=sys.stderr)
    if total_s > HOUR_S and not gpu:
        tqdm.write("warning: above an hour on a CPU. Faster: " + "; ".join(faster),
                   file=sys.stderr)
