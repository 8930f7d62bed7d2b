"""Many processes opening one brand-new SQLite store at once, on a busy machine: each open
succeeds (the newcomer's `test_concurrent_first_opens[sqlite]` failed with "database is
locked" at load 8). A few CPU-bound processes run beside them to make the scheduling uneven."""

import multiprocessing
import time
from pathlib import Path

from storage import LabelStore


def _open_and_count(location: str) -> int | str:
    try:
        with LabelStore.open(location) as store:
            return len(store.list_datasets())
    except Exception as exc:  # reported, not raised: the pool would hide which open failed
        return f"{type(exc).__name__}: {exc}"


def _burn(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_first_opens_of_a_new_store_under_load(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    burners = [ctx.Process(target=_burn, args=(20.0,)) for _ in range(4)]
    for b in burners:
        b.start()
    try:
        with ctx.Pool(8) as pool:
            for round_ in range(6):
                location = str(tmp_path / f"store-{round_}")
                assert pool.map(_open_and_count, [location] * 8) == [0] * 8
    finally:
        for b in burners:
            b.terminate()
            b.join()
