"""Training progress: two bars (trainings, epochs) on a terminal, one JSON log line per epoch elsewhere."""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager
from typing import Any

from ..log import bars_enabled

log = logging.getLogger("minescan.training")


class EpochReporter(AbstractContextManager):
    """`on_epoch` callback for `run_training`; `trainings` = folds × schemes + 1 final."""

    def __init__(self, trainings: int, epochs: int) -> None:
        self.trainings = trainings
        self.epochs = epochs
        self._bar: Any = None
        self._current: tuple[str, int | None] | None = None

    def __enter__(self) -> "EpochReporter":
        if bars_enabled():
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), transient=True)
            self._bar.start()
            self._runs = self._bar.add_task("trainings", total=self.trainings)
            self._epochs = self._bar.add_task("epochs", total=self.epochs)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            if self._current is not None:
                self._bar.advance(self._runs)
            self._bar.stop()

    def __call__(self, scheme: str, fold: int | None, epoch: int, record: dict[str, float]) -> None:
        rounded = {k: round(v, 5) for k, v in record.items()}
        label = "final model" if fold is None else f"{scheme} fold {fold + 1}"
        log.log(logging.DEBUG if self._bar is not None else logging.INFO,
                "%s epoch %d/%d %s", label, epoch + 1, self.epochs, rounded,
                extra={"cv": scheme, "fold": fold, "epoch": epoch + 1, **rounded})
        if self._bar is None:
            return
        if self._current != (scheme, fold):
            if self._current is not None:
                self._bar.advance(self._runs)
            self._current = (scheme, fold)
            self._bar.reset(self._epochs, total=self.epochs, description=f"epochs ({label})")
        self._bar.advance(self._epochs)
