"""Where a label-generation run is, and how long all of it will take.

`Tracker` follows one `generate_labels` call: every stage-1 batch (a `Stage1Tick`: fold j of K,
epoch) and every step of the method's stage (stage 2 of mug) of each run k of n. It tells its
caller a label naming all of that ("stage1 run 1/3 fold 2/3 epoch 4/15"), the fraction of the
whole call done, and the seconds left for *everything* still to come: the rest of this
training, the trainings and runs not yet started, and stage 2.

The estimate comes from timed steps: stage 1's seconds per batch (epoch-end evaluations
included) once a few batches ran, stage 2's seconds per meta-step once a few ran (before that
STAGE2_PRIOR_S, about what a step took under load on 2 cores). What is not known yet is taken
as follows: a training runs until its best epoch plus `patience` (at least as many epochs as
earlier trainings took; before any finished, min(max_epochs, 3 x patience)); later runs cost
what the first did; cross-fitting (chosen after the first training of a run) is not assumed
until it starts. `Estimate.cross_fit_s` says what it would add, so the first estimate can name
both figures.
"""

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from labelgen.stages.stage1 import Stage1Tick

ProgressFn = Callable[[str, float, float | None], None]  # (where, fraction of all, eta s)
StopFn = Callable[[], bool]
TIMED_STEPS = 5  # steps timed before the first estimate
STAGE2_PRIOR_S = 0.01  # seconds per meta-step of stage 2 (24 MUCNs) before one is timed


class Cancelled(Exception):  # noqa: N818 -- the public name in docs/architecture.md
    """should_stop() returned true: the run stopped and produced no labels."""


@dataclass(frozen=True)
class Estimate:
    """The first estimate of a call, made after TIMED_STEPS timed steps."""

    elapsed_s: float
    total_s: float  # elapsed + everything left, as the module doc assumes
    cross_fit_s: float  # what cross-fitting every run's stage 1 would add (0: cannot happen)
    basis: str  # what it was computed from, for people


class Tracker:
    def __init__(self, *, runs: int, stage1: bool, cross_fit_folds: int,
                 stage2_steps: int | None, stage2_epochs: int | None, method_stage: str,
                 progress: ProgressFn | None, should_stop: StopFn | None,
                 on_estimate: Callable[[Estimate], None] | None = None) -> None:
        self.runs, self.folds = runs, cross_fit_folds
        self.stage2_steps, self.stage2_epochs = stage2_steps, stage2_epochs
        self.method_stage = method_stage
        self.progress, self.should_stop, self.on_estimate = progress, should_stop, on_estimate
        self.started = time.perf_counter()
        self.timings: dict[str, float] = {}
        self.epochs_taken: list[int] = []  # by each stage-1 training that ended, all runs
        self.run_batches: list[int] = []  # stage-1 batches of each finished run
        self.run = 0
        self.tick: Stage1Tick | None = None
        self.run_done = 0  # stage-1 batches of the current run so far
        self.s1_batches, self.s1_first = 0, None  # batches timed, time of the first batch
        self.s2_done = 0.0  # meta-steps of the method stage done, all runs
        self.s2_first: tuple[float, float] | None = None  # (time, steps) when it was first seen
        self.stage = ""
        self.estimated = False
        self.s1_over = not stage1
        self.fraction_shown = 0.0
        self.fraction = 0.0  # of the method's stage of the current run
        self.method_started: float | None = None

    @contextmanager
    def stage_of(self, name: str) -> Iterator[None]:
        """Times stage `name` into timings[name_s]; reports its start and its end."""
        self.stage, started = name, time.perf_counter()
        if name != "stage1":
            self.method_started = started
        self._report()
        yield
        if name == "stage1":
            self.end_stage1()
        self.timings[f"{name}_s"] = time.perf_counter() - started
        self._report()

    def stage1(self, run: int) -> Callable[[Stage1Tick], None]:
        def on_tick(tick: Stage1Tick) -> None:
            if run != self.run:
                self._end_run()
                self.run = run
            last = self.tick
            if last is not None and (tick.fold != last.fold or tick.folds != last.folds
                                     or tick.epoch < last.epoch):
                self.epochs_taken.append(last.epoch)
            self.tick = tick
            self.run_done += 1
            self.s1_batches += 1
            if self.s1_first is None:
                self.s1_first = time.perf_counter()
            self._report()
        return on_tick

    def end_stage1(self) -> None:
        self._end_run()
        self.s1_over = True

    def method(self, run: int) -> Callable[[float], None]:
        """The method's stage of run `run` reports the fraction of its steps done."""
        def on_fraction(fraction: float) -> None:
            self.run, self.fraction = run, fraction
            if self.stage2_steps:
                self.s2_done = (run + fraction) * self.stage2_steps
                if self.s2_first is None:
                    self.s2_first = (time.perf_counter(), self.s2_done)
            self._report()
        return on_fraction

    def _end_run(self) -> None:
        if self.tick is not None:
            self.epochs_taken.append(self.tick.epoch)
            self.run_batches.append(self.run_done)
        self.tick, self.run_done = None, 0

    # --- the estimate -------------------------------------------------------------------
    def _s1_rate(self) -> float | None:
        if self.s1_first is None or self.s1_batches <= TIMED_STEPS:
            return None
        return (time.perf_counter() - self.s1_first) / (self.s1_batches - 1)

    def _s2_rate(self) -> float:
        if self.s2_first is not None:
            t0, steps0 = self.s2_first
            if self.s2_done - steps0 >= TIMED_STEPS:
                return (time.perf_counter() - t0) / (self.s2_done - steps0)
        return STAGE2_PRIOR_S

    def _expected_epochs(self, tick: Stage1Tick) -> int:
        seen = self.epochs_taken
        prior = round(sum(seen) / len(seen)) if seen else min(tick.max_epochs,
                                                              3 * tick.patience)
        if tick.best_epoch:
            prior = max(prior, tick.best_epoch + tick.patience)
        return max(tick.epoch, min(tick.max_epochs, prior))

    def _stage1_left(self) -> float:
        """Stage-1 batches still to come, this run and later ones."""
        if self.s1_over:
            return 0.0
        tick, this_run = self.tick, 0.0
        if tick is not None:
            epochs = self._expected_epochs(tick)
            this_run = (epochs - tick.epoch) * tick.batches + (tick.batches - tick.batch)
            if tick.folds:
                this_run += (tick.folds - 1 - tick.fold) * epochs * tick.batches
        per_run = (sum(self.run_batches) / len(self.run_batches) if self.run_batches
                   else self.run_done + this_run)
        return this_run + max(self.runs - 1 - self.run, 0) * per_run

    def eta(self) -> float | None:
        rate = self._s1_rate()
        if not self.s1_over and rate is None:
            return None  # too few batches timed
        if not self.stage2_steps:  # a method stage of unknown steps: by proportion
            if self.s1_over:
                elapsed = time.perf_counter() - (self.method_started or self.started)
                done = self.run + self.fraction
                return elapsed * (self.runs - done) / done if done > 0 else None
            return self._stage1_left() * (rate or 0.0)
        s1 = self._stage1_left() * (rate or 0.0)
        return s1 + (self.runs * self.stage2_steps - self.s2_done) * self._s2_rate()

    def _cross_fit_extra(self) -> float:
        tick, rate = self.tick, self._s1_rate()
        if tick is None or rate is None or tick.folds or not self.folds:
            return 0.0
        k = self.folds
        fold_batches = tick.batches * (k - 1) / k
        return self.runs * k * self._expected_epochs(tick) * fold_batches * rate

    def where(self) -> str:
        parts = [self.stage or self.method_stage]
        if self.runs > 1:
            parts.append(f"run {self.run + 1}/{self.runs}")
        tick = self.tick
        if self.stage == "stage1" and tick is not None:
            parts.append(f"fold {tick.fold + 1}/{tick.folds}" if tick.folds else "")
            parts.append(f"epoch {tick.epoch}/{tick.max_epochs}")
        elif self.stage2_steps and self.stage2_epochs and self.stage != "stage1":
            step = self.s2_done - self.run * self.stage2_steps
            epoch = min(int(step * self.stage2_epochs / self.stage2_steps) + 1,
                        self.stage2_epochs)
            parts.append(f"epoch {epoch}/{self.stage2_epochs}")
        return " ".join(p for p in parts if p)

    def _report(self) -> None:
        if self.should_stop is not None and self.should_stop():
            raise Cancelled(f"cancelled during {self.stage}")
        elapsed = time.perf_counter() - self.started
        eta = self.eta()
        if eta is not None and not self.estimated and self.on_estimate is not None:
            self.estimated = True
            rate = self._s1_rate()
            basis = (f"stage 1 at {rate:.3f} s per batch" if rate is not None else "")
            if self.stage2_steps:
                basis += (f"{', ' if basis else ''}stage 2: {self.runs * self.stage2_steps} "
                          f"meta-steps at {self._s2_rate():.4f} s")
            self.on_estimate(Estimate(elapsed_s=elapsed, total_s=elapsed + eta,
                                      cross_fit_s=self._cross_fit_extra(), basis=basis))
        if self.progress is not None:
            # never backwards: a bar (or a job's progress) that shrinks helps nobody, the
            # ETA says when a later estimate is longer
            if eta is not None:
                self.fraction_shown = max(self.fraction_shown, min(elapsed / (elapsed + eta),
                                                                   1.0))
            self.progress(self.where(), self.fraction_shown, eta)

    def done(self) -> None:
        if self.progress is not None:
            self.progress(f"{self.stage} done", 1.0, 0.0)
