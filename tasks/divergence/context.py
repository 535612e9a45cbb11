"""Which context a trace is scored on, from what generation recorded with it (issue #25).

Teacher-forced scores only mean something on the context the trace was sampled from. Per trace and
scoring model, in order:

* `recorded`: the generating model's rendered prompt (`prompt_context_text`), verbatim, for the
  generating model itself, and for any model when the prompt was raw text (not a chat);
* `recorded_messages`: a chat prompt's recorded messages (`prompt_messages_json`: system prompt +
  user turn) rendered with the scoring model's own chat template;
* for traces generated before the context columns existed, the same two kinds rebuilt from the
  trace's `sampling_json` (prompt template, system prompt, chat flag) and its problem;
* None (the caller scores the problem with the scoring model's template: `problem_template`):
  imported traces and anything else without a record.

>>> row = {"model_id": "t@1", "is_chat_prompt": True, "prompt_context_text": "<s><|user|>Hi\\n<|assistant|>",
...        "prompt_messages_json": '[{"role": "user", "content": "Hi"}]'}
>>> recorded_context(row, "t@1").kind, recorded_context(row, "s@2").messages
('recorded', (('user', 'Hi'),))
>>> recorded_context({"model_id": "hub", "origin": "imported"}, "s@2") is None
True
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from tasks.divergence.scoring import PromptContext

CONTEXT_COLUMNS = ("model_id", "problem_text", "prompt_context_text", "prompt_messages_json", "is_chat_prompt", "sampling_json")


class ContextError(ValueError):
    """A trace's recorded context cannot be read; the message names the trace and field."""


def recorded_context(row: Mapping, scoring_model_id: str) -> PromptContext | None:
    """The recorded context to score `row` (a trace with CONTEXT_COLUMNS) on under `scoring_model_id`."""
    is_chat = row.get("is_chat_prompt")
    text = row.get("prompt_context_text")
    messages_json = row.get("prompt_messages_json")
    if is_chat is None:
        return _rebuilt(row, scoring_model_id)
    if not is_chat:
        return PromptContext("recorded", text=text, is_chat=False) if text is not None else None
    if text is not None and scoring_model_id == row.get("model_id"):
        return PromptContext("recorded", text=text, is_chat=True)
    if messages_json:
        return PromptContext("recorded_messages", messages=_messages(messages_json, row))
    return None


def _messages(messages_json: str, row: Mapping) -> tuple[tuple[str, str], ...]:
    where = f"trace {row.get('trace_id', '?')}: field 'prompt_messages_json'"
    try:
        data = json.loads(messages_json)
        out = tuple((str(m["role"]), str(m["content"])) for m in data)
    except (ValueError, TypeError, KeyError) as exc:
        raise ContextError(f"{where} is not a list of {{role, content}} messages ({exc})") from None
    if not out:
        raise ContextError(f"{where} holds no message")
    return out


def _rebuilt(row: Mapping, scoring_model_id: str) -> PromptContext | None:
    """Context of a trace generated before the context columns: from its sampling_json + problem."""
    raw, problem = row.get("sampling_json"), row.get("problem_text")
    if not raw or problem is None:
        return None
    try:
        sampling = json.loads(raw)
    except ValueError:
        raise ContextError(f"trace {row.get('trace_id', '?')}: field 'sampling_json' is not JSON") from None
    template = sampling.get("prompt_template")
    if not isinstance(template, str) or "use_chat_template" not in sampling:
        return None
    user = template.replace("{problem}", problem)
    if not sampling["use_chat_template"]:
        return PromptContext("recorded", text=user, is_chat=False)
    system = sampling.get("system_prompt")
    messages = ((("system", system),) if system else ()) + (("user", user),)
    return PromptContext("recorded_messages", messages=messages)
