"""Turn curated rows into conversational prompt/completion examples for SFT.

Accepted inputs (polars DataFrame):
- `messages`: a list of {role, content} per row (the `curated.cur_sft_<name>` views); the last
  assistant turn is the completion, everything before it the prompt;
- or `prompt`, `reasoning`, `answer` (reasoning may be null): the completion is
  `<think>\\nreasoning\\n</think>\\n\\nanswer`, as in the chat-format export.

>>> import polars as pl
>>> ex = to_sft_examples(pl.DataFrame({"prompt": ["2+2?"], "reasoning": ["2+2=4."], "answer": ["\\\\boxed{4}"]}))
>>> ex[0]["completion"][0]["content"]
'<think>\\n2+2=4.\\n</think>\\n\\n\\\\boxed{4}'
"""

from __future__ import annotations

from typing import Any

import polars as pl

from tasks.common.ids import stable_hash
from tasks.common.text import join_think
from tasks.train.config import TrainError


def _prompt_messages(prompt: str, system_prompt: str | None) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return messages + [{"role": "user", "content": prompt}]


def to_sft_examples(rows: pl.DataFrame, *, system_prompt: str | None = None) -> list[dict[str, Any]]:
    """Conversational prompt/completion examples (TRL's format); loss later falls on the completion only.

    Raises TrainError naming the row and field when a row cannot become an example.
    """
    if rows.height == 0:
        raise TrainError("the training dataset has no rows")
    examples: list[dict[str, Any]] = []
    if "messages" in rows.columns:
        for i, messages in enumerate(rows["messages"].to_list()):
            msgs = [{"role": str(m["role"]), "content": str(m["content"])} for m in (messages or [])]
            last = max((j for j, m in enumerate(msgs) if m["role"] == "assistant"), default=-1)
            if last < 0 or not any(m["role"] == "user" for m in msgs[:last]):
                raise TrainError(f"row {i}: field 'messages' needs a user turn followed by an assistant turn")
            prompt = msgs[:last]
            if system_prompt and prompt[0]["role"] != "system":
                prompt = [{"role": "system", "content": system_prompt}] + prompt
            examples.append({"prompt": prompt, "completion": [msgs[last]]})
        return examples
    missing = [c for c in ("prompt", "answer") if c not in rows.columns]
    if missing:
        raise TrainError(f"training rows need a 'messages' column or 'prompt', 'reasoning', 'answer'; missing {missing}")
    reasoning = rows["reasoning"].to_list() if "reasoning" in rows.columns else [None] * rows.height
    for i, (prompt, rsn, answer) in enumerate(zip(rows["prompt"].to_list(), reasoning, rows["answer"].to_list())):
        if not prompt or not str(prompt).strip():
            raise TrainError(f"row {i}: field 'prompt' is empty")
        if answer is None or (not str(answer).strip() and not rsn):
            raise TrainError(f"row {i}: fields 'reasoning' and 'answer' are both empty")
        examples.append(
            {
                "prompt": _prompt_messages(str(prompt), system_prompt),
                "completion": [{"role": "assistant", "content": join_think(rsn, str(answer))}],
            }
        )
    return examples


def examples_hash(examples: list[dict[str, Any]]) -> str:
    """Order-independent content hash of the training examples actually used."""
    return stable_hash(sorted(stable_hash(e, length=32) for e in examples), length=32)
