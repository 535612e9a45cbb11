"""Synthetic R1-style math traces for the scale run: no model, written straight into raw tables.

Every prompt is a small arithmetic word problem with a reference answer; each prompt gets
`samples_per_prompt` traces from "synthetic-teacher" written as `<think>...</think>` reasoning
followed by a `\\boxed{}` answer. A fixed, seeded share of traces is planted:

- wrong: the boxed answer is off (`incorrect` for math-verify),
- truncated: the reasoning is cut mid-sentence, no `</think>`, `finish_reason='length'`,
- exact duplicate: the completion of sample 0 re-emitted by "synthetic-teacher-b",
- near duplicate: sample 0 with one word changed, also by "synthetic-teacher-b".

>>> counts = write_synthetic(Warehouse(":memory:"), 40)   # doctest: +SKIP
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from tasks.common.ids import imported_trace_id, prompt_id_for
from tasks.common.text import split_think
from warehouse.runs import utcnow

SOURCE = "synthetic_math"
TEACHER = "synthetic-teacher"
TEACHER_B = "synthetic-teacher-b"
NAMES = ["Ava", "Ben", "Chen", "Dara", "Eli", "Farah", "Gus", "Hana", "Ivan", "Jun", "Kemal", "Lena", "Mira", "Noor"]
ITEMS = ["apples", "marbles", "stickers", "books", "coins", "pencils", "cards", "shells", "stamps", "tickets"]
OPENERS = [
    "Okay, let me work through this carefully.",
    "Alright, so the problem asks for a total.",
    "Let me start by restating what we know.",
    "Hmm, this looks like a multiplication followed by an addition.",
    "First I should identify the quantities involved.",
    "Let's see what the question is really asking.",
]
CHECKS = [
    "Let me double-check that multiplication by adding it up again.",
    "Wait, I should verify this step before moving on.",
    "Going back over the arithmetic once more to be safe.",
    "Actually, let me recount to make sure nothing was missed.",
    "I will sanity-check the size of this number against the story.",
    "To be careful, I can split the product into tens and units.",
]
FILLER = [
    "The order of the operations matters here, so the product comes first.",
    "Nothing in the problem suggests any items are lost or given away.",
    "The extra amount is added only once, at the end.",
    "Each group has the same size, which is why multiplication works.",
    "It helps to write the intermediate result down explicitly.",
    "The units stay the same throughout, so no conversion is needed.",
    "A rough estimate says the answer should be in the low hundreds or less.",
    "There is no remainder to worry about in this problem.",
]


@dataclass(frozen=True)
class SynthConfig:
    samples_per_prompt: int = field(default=4, metadata={"help": "traces per prompt from the main teacher"})
    wrong_rate: float = field(default=0.2, metadata={"help": "share of traces whose boxed answer is wrong"})
    truncated_rate: float = field(default=0.05, metadata={"help": "share of traces cut mid-reasoning (finish_reason=length)"})
    exact_dup_rate: float = field(default=0.03, metadata={"help": "share of prompts whose sample 0 is re-emitted verbatim by teacher b"})
    near_dup_rate: float = field(default=0.03, metadata={"help": "share of prompts whose sample 0 is re-emitted with one word changed"})
    seed: int = field(default=0, metadata={"help": "seed of every random choice"})


def problem(i: int) -> tuple[str, int, tuple[int, int, int]]:
    """Problem text, integer answer and operands (a, b, c) of prompt i (deterministic)."""
    rng = random.Random(f"prompt-{i}")
    a, b, c = rng.randint(3, 40), rng.randint(2, 25), rng.randint(1, 99)
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    text = (
        f"Problem {i}: {name} has {a} boxes with {b} {item} in each box, and then finds {c} more {item}. "
        f"How many {item} does {name} have in total?"
    )
    return text, a * b + c, (a, b, c)


def completion(i: int, sample: int, answer: int, *, wrong: bool, truncated: bool) -> str:
    """An R1-style completion for prompt i; `wrong` boxes a wrong answer, `truncated` cuts the reasoning."""
    rng = random.Random(f"trace-{i}-{sample}")
    _, _, (a, b, c) = problem(i)
    product = a * b
    steps = [rng.choice(OPENERS), f"There are {a} boxes and each one holds {b}, so the product is {a} times {b}."]
    steps += rng.sample(FILLER, k=rng.randint(2, 5))
    steps.append(f"{a} times {b}: {a} times {b // 2 * 2} is {a * (b // 2 * 2)}, plus {a * (b % 2)} gives {product}.")
    steps.append(rng.choice(CHECKS))
    steps.append(f"Yes, {a} x {b} = {product}. Sample {sample} note {rng.randint(0, 10**6)}.")
    steps += rng.sample(FILLER, k=rng.randint(1, 3))
    final = answer + rng.choice([-10, -1, 1, 2, 10]) if wrong else answer
    steps.append(f"Now add the {c} extra ones: {product} + {c} = {final}.")
    reasoning = "\n\n".join(steps)
    if truncated:
        cut = rng.randint(len(reasoning) // 3, 2 * len(reasoning) // 3)
        return "<think>\n" + reasoning[:cut]
    return f"<think>\n{reasoning}\n</think>\n\nThe total is {a} \\times {b} + {c} = {final}.\n\n$\\boxed{{{final}}}$"


def _trace_row(prompt_id: str, model_id: str, sample: int, text: str, truncated: bool, ref: str) -> dict:
    think = split_think(text)
    n_tokens = max(1, round(len(text.split()) * 1.3))
    return {
        "trace_id": imported_trace_id(prompt_id, model_id, text), "prompt_id": prompt_id, "model_id": model_id,
        "origin": "imported", "sample_index": sample, "completion_text": text, "reasoning_text": think.reasoning,
        "answer_text": think.answer, "n_prompt_tokens": 60, "n_completion_tokens": n_tokens,
        "finish_reason": "length" if truncated else "stop", "is_truncated": truncated, "temperature": 0.6,
        "top_p": 0.95, "max_tokens": 4096, "seed": sample, "sampling_json": '{"temperature": 0.6, "top_p": 0.95}',
        "source_ref": ref,
    }


def synth_batch(first_prompt: int, n_prompts: int, cfg: SynthConfig) -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    """Prompts [first_prompt, first_prompt + n_prompts) and their traces, plus planted counts."""
    prompts, traces = [], []
    counts = {"wrong": 0, "truncated": 0, "exact_dup": 0, "near_dup": 0}
    for i in range(first_prompt, first_prompt + n_prompts):
        text, answer, _ = problem(i)
        pid = prompt_id_for(text, SOURCE)
        prompts.append({"prompt_id": pid, "source": SOURCE, "source_ref": f"synthetic:{i}", "domain": "math",
                        "problem_text": text, "reference_answer": str(answer), "split": "train"})
        rng = random.Random(f"plant-{cfg.seed}-{i}")
        first = None
        for s in range(cfg.samples_per_prompt):
            wrong, truncated = rng.random() < cfg.wrong_rate, rng.random() < cfg.truncated_rate
            body = completion(i, s, answer, wrong=wrong, truncated=truncated)
            counts["wrong"] += wrong and not truncated
            counts["truncated"] += truncated
            traces.append(_trace_row(pid, TEACHER, s, body, truncated, f"synthetic:{i}:{s}"))
            first = first or (body, truncated)
        if rng.random() < cfg.exact_dup_rate:
            counts["exact_dup"] += 1
            traces.append(_trace_row(pid, TEACHER_B, 0, first[0], first[1], f"synthetic:{i}:b0"))
        elif rng.random() < cfg.near_dup_rate and not first[1]:
            counts["near_dup"] += 1
            edited = first[0].replace("carefully", "slowly", 1).replace("restating", "listing", 1).replace(
                "really", "actually", 1).replace("First I", "To begin I", 1).replace("Alright", "Right", 1).replace(
                "Hmm", "Well", 1)
            traces.append(_trace_row(pid, TEACHER_B, 1, edited, False, f"synthetic:{i}:b1"))
    return pl.DataFrame(prompts), pl.DataFrame(traces), counts


def write_synthetic(wh, n_traces: int, cfg: SynthConfig | None = None, *, batch_prompts: int = 5_000,
                    run_id: str = "synth-scale") -> dict:
    """Write about `n_traces` traces (main teacher: exactly n_traces rounded down to whole prompts,
    plus planted duplicates) and their prompts; returns counts. Memory stays bounded per batch."""
    cfg = cfg or SynthConfig()
    n_prompts = max(1, n_traces // cfg.samples_per_prompt)
    now = utcnow()
    totals = {"prompts": 0, "traces": 0, "wrong": 0, "truncated": 0, "exact_dup": 0, "near_dup": 0}
    for start in range(0, n_prompts, batch_prompts):
        prompts, traces, counts = synth_batch(start, min(batch_prompts, n_prompts - start), cfg)
        stamp = [pl.lit(now).cast(pl.Datetime("us")), pl.lit(run_id)]
        with wh.transaction() as con:
            totals["prompts"] += wh.load("raw.raw_prompts", prompts.with_columns(stamp[0].alias("ingested_at"),
                                                                                  stamp[1].alias("run_id")),
                                         key=["prompt_id"], con=con)
            totals["traces"] += wh.load("raw.raw_traces", traces.with_columns(stamp[0].alias("created_at"),
                                                                               stamp[1].alias("run_id")),
                                        key=["trace_id"], con=con)
        for k, v in counts.items():
            totals[k] += v
    return totals


def synthetic_logprob_tables(traces: pl.DataFrame, model_id: str, *, run_id: str = "synth-scale",
                             splitter: str = "synth-sentences-v1", seed: int = 0) -> tuple[pa.Table, pa.Table]:
    """Token log-probs and sentence scores of `traces(trace_id, completion_text)` as the divergence
    stage stores them (one scoring model), built without a model and without per-trace Python.

    Tokens approximate a BPE tokenizer on ASCII text: one token at every word start and every 4
    characters inside a word; log-probs are random (seeded). Sentences end at ". " or a blank line;
    a sentence's score is the mean log-prob of the tokens that start in it. Returns Arrow tables
    for raw.raw_token_logprobs and raw.raw_sentence_scores.
    """
    texts = traces["completion_text"].fill_null("")
    if not (texts.str.len_bytes() == texts.str.len_chars()).all():
        raise ValueError("synthetic_logprob_tables: completion_text must be ASCII (offsets are byte offsets)")
    lengths = texts.str.len_bytes().to_numpy().astype(np.int64)
    text_start = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=text_start[1:])
    buf = np.frombuffer("".join(texts.to_list()).encode("ascii"), dtype=np.uint8)
    pos = np.arange(buf.size, dtype=np.int64)
    row = np.repeat(np.arange(len(lengths)), lengths)
    local = pos - text_start[:-1][row]
    space = np.isin(buf, np.frombuffer(b" \n\t\r", dtype=np.uint8))
    prev_space = np.ones(buf.size, dtype=bool)
    prev_space[1:] = space[:-1]
    prev_space[local == 0] = True
    word_start = ~space & prev_space
    last_word = np.maximum.accumulate(np.where(word_start, pos, 0))
    tok = ~space & (word_start | ((pos - last_word) % 4 == 0))
    tok_pos = np.flatnonzero(tok)
    tok_row = row[tok_pos]
    tok_off = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(np.bincount(tok_row, minlength=len(lengths)), out=tok_off[1:])
    rng = np.random.default_rng(seed)
    logprobs = (-rng.exponential(0.6, tok_pos.size)).astype(np.float32)
    token_ids = rng.integers(0, 151_936, tok_pos.size, dtype=np.int32)
    char_starts = local[tok_pos].astype(np.int32)
    n = len(lengths)
    now = utcnow()
    ids = pa.array(traces["trace_id"].to_list(), pa.string())
    tokens = pa.table({
        "trace_id": ids,
        "model_id": pa.array([model_id] * n, pa.string()),
        "logprob_source": pa.array(["teacher_forced"] * n, pa.string()),
        "n_tokens": pa.array(np.diff(tok_off).astype(np.int32)),
        "token_ids": pa.ListArray.from_arrays(pa.array(tok_off.astype(np.int32)), pa.array(token_ids)),
        "logprobs": pa.ListArray.from_arrays(pa.array(tok_off.astype(np.int32)), pa.array(logprobs)),
        "char_starts": pa.ListArray.from_arrays(pa.array(tok_off.astype(np.int32)), pa.array(char_starts)),
        "top_k": pa.array(np.zeros(n, dtype=np.int32)),
        "created_at": pa.array([now] * n, pa.timestamp("us")),
        "run_id": pa.array([run_id] * n, pa.string()),
    })
    # sentences: a boundary after ". " or "\n\n" (the next sentence starts at the following char)
    dot = np.zeros(buf.size, dtype=bool)
    dot[:-1] = ((buf[:-1] == ord(".")) & (buf[1:] == ord(" "))) | ((buf[:-1] == ord("\n")) & (buf[1:] == ord("\n")))
    boundary = np.zeros(buf.size, dtype=bool)
    boundary[2:] = dot[:-2]
    boundary[local == 0] = True
    boundary &= lengths[row] > 0
    s_pos = np.flatnonzero(boundary)
    s_row = row[s_pos]
    s_end = np.empty_like(s_pos)
    s_end[:-1] = s_pos[1:]
    if s_pos.size:
        s_end[-1] = buf.size
    last_of_row = np.r_[s_row[1:] != s_row[:-1], True] if s_pos.size else np.zeros(0, bool)
    s_end[last_of_row] = text_start[1:][s_row[last_of_row]]
    first_tok = np.searchsorted(tok_pos, s_pos)
    end_tok = np.searchsorted(tok_pos, s_end)
    n_tok = end_tok - first_tok
    sums = np.add.reduceat(np.r_[logprobs, 0].astype(np.float64), np.minimum(first_tok, logprobs.size)) if s_pos.size else np.zeros(0)
    mean = np.where(n_tok > 0, sums / np.maximum(n_tok, 1), np.nan)
    s_index = np.arange(s_pos.size) - np.searchsorted(s_row, s_row, side="left")
    sentences = pa.table({
        "trace_id": pa.array(np.asarray(traces["trace_id"].to_list(), dtype=object)[s_row], pa.string()),
        "sentence_index": pa.array(s_index.astype(np.int32)),
        "char_start": pa.array(local[s_pos].astype(np.int32)),
        "char_end": pa.array((s_end - text_start[:-1][s_row]).astype(np.int32)),
        "model_id": pa.array([model_id] * s_pos.size, pa.string()),
        "n_tokens": pa.array(n_tok.astype(np.int32)),
        "mean_logprob": pa.array(mean, pa.float64(), mask=n_tok == 0),
        "splitter": pa.array([splitter] * s_pos.size, pa.string()),
        "scored_at": pa.array([now] * s_pos.size, pa.timestamp("us")),
        "run_id": pa.array([run_id] * s_pos.size, pa.string()),
    })
    return tokens, sentences


def write_synthetic_logprobs(wh, model_id: str = TEACHER, *, batch: int = 20_000) -> dict:
    """Token log-probs and sentence scores (`synthetic_logprob_tables`) of every trace, a batch per
    transaction; returns row counts."""
    totals = {"token_logprob_rows": 0, "tokens": 0, "sentence_rows": 0}
    ids = wh.query("select trace_id from raw.raw_traces order by trace_id")["trace_id"]
    for lo in range(0, ids.len(), batch):
        part = wh.query("select trace_id, completion_text from raw.raw_traces where trace_id in (select unnest(?::varchar[])) "
                        "order by trace_id", [ids.slice(lo, batch).to_list()])
        tokens, sentences = synthetic_logprob_tables(part, model_id, seed=lo)
        with wh.transaction() as con:
            totals["token_logprob_rows"] += wh.load("raw.raw_token_logprobs", tokens, key=["trace_id", "model_id"], con=con)
            totals["sentence_rows"] += wh.load("raw.raw_sentence_scores", sentences,
                                               key=["trace_id", "model_id", "splitter", "sentence_index"], con=con)
        totals["tokens"] += int(pc.sum(tokens["n_tokens"]).as_py() or 0)
    return totals
