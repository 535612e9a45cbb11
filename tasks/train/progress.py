"""Training progress for people: a TRL/transformers `TrainerCallback` that writes one line per
interval to a given logger (the Prefect run logger inside a flow) — step / planned steps, loss,
steps/s and ETA — and reports the fraction done to an optional callable (a Prefect progress
artifact). Pure: no Prefect import; the caller passes the logger and the callable.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable


def format_eta(seconds: float | None) -> str:
    """
    >>> format_eta(75), format_eta(3725), format_eta(None)
    ('1m15s', '1h02m', '?')
    """
    if seconds is None or math.isnan(seconds) or seconds < 0:
        return "?"
    seconds = round(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def progress_line(step: int, planned: int, loss: float | None, steps_per_s: float | None) -> str:
    """
    >>> progress_line(250, 1000, 1.23456, 2.5)
    'training step 250/1000 (25%), loss 1.235, 2.50 steps/s, ETA 5m00s'
    """
    pct = f" ({100 * step / planned:.0f}%)" if planned else ""
    loss_text = f"loss {loss:.4g}" if loss is not None else "loss ?"
    rate = f"{steps_per_s:.2f} steps/s" if steps_per_s else "? steps/s"
    eta = format_eta((planned - step) / steps_per_s) if planned and steps_per_s else "?"
    return f"training step {step}/{planned or '?'}{pct}, {loss_text}, {rate}, ETA {eta}"


def make_progress_callback(logger: logging.Logger | logging.LoggerAdapter, *, every_s: float = 10.0,
                           on_progress: Callable[[float], None] | None = None):
    """A `TrainerCallback` logging progress at most every `every_s` seconds (and at the end, saying
    whether the run stopped before its planned steps)."""
    from transformers import TrainerCallback

    class ProgressCallback(TrainerCallback):
        def __init__(self) -> None:
            self.started: float | None = None
            self.last_log = 0.0
            self.loss: float | None = None

        def on_train_begin(self, args, state, control, **kwargs):
            self.started = self.last_log = time.monotonic()
            logger.info("training: %d steps planned", state.max_steps)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                self.loss = float(logs["loss"])

        def _rate(self, state) -> float | None:
            elapsed = time.monotonic() - (self.started or time.monotonic())
            return state.global_step / elapsed if elapsed > 0 and state.global_step else None

        def on_step_end(self, args, state, control, **kwargs):
            now = time.monotonic()
            if now - self.last_log < every_s:
                return
            self.last_log = now
            logger.info(progress_line(state.global_step, state.max_steps, self.loss, self._rate(state)))
            if on_progress is not None and state.max_steps:
                on_progress(100.0 * state.global_step / state.max_steps)

        def on_train_end(self, args, state, control, **kwargs):
            line = progress_line(state.global_step, state.max_steps, self.loss, self._rate(state))
            if state.max_steps and state.global_step < state.max_steps:
                logger.warning("%s; stopped early: truncated at %d of %d planned steps", line, state.global_step, state.max_steps)
            else:
                logger.info("%s; done", line)
            if on_progress is not None and state.max_steps:
                on_progress(100.0 * state.global_step / state.max_steps)

    return ProgressCallback()


__all__ = ["format_eta", "make_progress_callback", "progress_line"]
