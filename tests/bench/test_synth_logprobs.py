"""Synthetic token log-probs and sentence scores (bench-scale storage figures) are consistent tables."""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl

from bench.synth import SynthConfig, synth_batch, synthetic_logprob_tables


def test_tokens_and_sentences_agree_with_the_text():
    _, traces, _ = synth_batch(0, 40, SynthConfig())
    traces = pl.concat([traces.select("trace_id", "completion_text"),
                        pl.DataFrame({"trace_id": ["empty"], "completion_text": [""]})])
    tokens, sentences = synthetic_logprob_tables(traces, "m")
    assert tokens.num_rows == traces.height
    text = dict(zip(traces["trace_id"], traces["completion_text"]))
    per_trace = {r["trace_id"]: r for r in tokens.to_pylist()}
    assert per_trace["empty"]["n_tokens"] == 0
    for r in per_trace.values():
        assert len(r["logprobs"]) == len(r["char_starts"]) == len(r["token_ids"]) == r["n_tokens"]
        assert all(not text[r["trace_id"]][c].isspace() for c in r["char_starts"])
    by_trace: dict[str, list] = {}
    for s in sentences.to_pylist():
        by_trace.setdefault(s["trace_id"], []).append(s)
        r = per_trace[s["trace_id"]]
        inside = [lp for lp, c in zip(r["logprobs"], r["char_starts"]) if s["char_start"] <= c < s["char_end"]]
        assert len(inside) == s["n_tokens"]
        if inside:
            assert abs(np.mean(inside) - s["mean_logprob"]) < 1e-5
    for tid, rows in by_trace.items():  # sentences tile the text, in order
        assert [r["sentence_index"] for r in rows] == list(range(len(rows)))
        assert rows[0]["char_start"] == 0 and rows[-1]["char_end"] == len(text[tid])
        assert all(a["char_end"] == b["char_start"] for a, b in itertools.pairwise(rows))
    assert "empty" not in by_trace
