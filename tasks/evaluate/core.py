"""Evaluate one model on a problem table: greedy pass@1 and sampled pass@k, verified per domain.

>>> samples = evaluate_problems(problems, StageGenerator(path), EvalConfig(k=4))   # doctest: +SKIP
>>> summarize(samples, k=4)                                                  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from tasks.evaluate.backend import Generator
from tasks.evaluate.config import EvalConfig
from tasks.evaluate.verifier import verify_samples

SAMPLE_SCHEMA = {
    "problem_id": pl.String, "domain": pl.String, "mode": pl.String, "sample_index": pl.Int32,
    "completion_text": pl.String, "n_completion_tokens": pl.Int32, "finish_reason": pl.String,
    "is_truncated": pl.Boolean,
}


def generate_samples(problems: pl.DataFrame, generator: Generator, cfg: EvalConfig, *, seed_offset: int = 0) -> pl.DataFrame:
    """One greedy completion and `cfg.samples_per_problem` sampled ones per problem."""
    prompts = problems["problem"].to_list()
    common = {"top_p": cfg.top_p, "max_new_tokens": cfg.max_new_tokens, "system_prompt": cfg.system_prompt}
    greedy = generator.generate(prompts, n=1, temperature=0.0, seed=cfg.seed + seed_offset, **common)
    sampled = generator.generate(prompts, n=cfg.samples_per_problem, temperature=cfg.temperature,
                                 seed=cfg.seed + seed_offset, **common)
    rows = []
    for pid, domain, g, s in zip(problems["problem_id"], problems["domain"], greedy, sampled):
        for mode, samples in (("greedy", g), ("sampled", s)):
            for i, sample in enumerate(samples):
                rows.append({"problem_id": pid, "domain": domain, "mode": mode, "sample_index": i,
                             "completion_text": sample.text, "n_completion_tokens": sample.n_tokens,
                             "finish_reason": sample.finish_reason, "is_truncated": sample.finish_reason == "length"})
    return pl.DataFrame(rows, schema=SAMPLE_SCHEMA)


def evaluate_problems(
    problems: pl.DataFrame,
    generator: Generator,
    cfg: EvalConfig,
    *,
    verify: Callable[[pl.DataFrame], pl.DataFrame] = verify_samples,
    seed_offset: int = 0,
) -> pl.DataFrame:
    """Generate and verify; returns one row per completion with verdict_status and score.

    `seed_offset` keeps shards reproducible: shard i of a run always samples with seed + offset i.
    """
    samples = generate_samples(problems, generator, cfg, seed_offset=seed_offset)
    refs = problems.select("problem_id", "reference_answer", "tests_json")
    verified = verify(samples.join(refs, on="problem_id", how="left"))
    return verified.drop("reference_answer", "tests_json")
