"""Training progress lines (steps, loss, steps/s, ETA) go to the given logger; a run stopped before
its planned steps says so."""

from __future__ import annotations

import logging
from types import SimpleNamespace

from tasks.train.progress import make_progress_callback


def test_progress_callback_logs_steps_loss_rate_eta_and_truncation(caplog):
    logger = logging.getLogger("potstill.test.train")
    seen: list[float] = []
    callback = make_progress_callback(logger, every_s=0.0, on_progress=seen.append)
    state = SimpleNamespace(global_step=0, max_steps=1000)
    control = SimpleNamespace()
    with caplog.at_level(logging.INFO, logger="potstill.test.train"):
        callback.on_train_begin(None, state, control)
        for step in (10, 20):
            state.global_step = step
            callback.on_log(None, state, control, logs={"loss": 2.5 - step / 100})
            callback.on_step_end(None, state, control)
        callback.on_train_end(None, state, control)
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "training: 1000 steps planned"
    assert messages[2].startswith("training step 20/1000 (2%), loss 2.3, ") and "steps/s, ETA " in messages[2]
    assert "truncated at 20 of 1000 planned steps" in messages[-1] and caplog.records[-1].levelname == "WARNING"
    assert seen == [1.0, 2.0, 2.0]
