"""Teacher-forced scoring: per-token log-probs of a completion under any causal LM.

The context is the one the trace was sampled from when it was recorded (`ScoringItem.context`,
see `tasks.divergence.context`): the generating model's rendered prompt verbatim, or the recorded
chat messages under the scoring model's own chat template. Without a recorded context the problem is
rendered with the scoring model's chat template (generation prompt added) and `ScoringConfig`'s
system prompt. Each output row says which (`context_kind`). The completion is appended as its own token sequence (as a sampler would have produced it), and the log-prob of
every completion token given everything before it is gathered. Logits are never materialised for
a whole batch: the model body runs once per batch, then the output head + log_softmax run over
`chunk_tokens` completion positions at a time and only the target token's log-prob is kept.
Batches are length-sorted and bounded by padded tokens. Char offsets of each completion token
(offset mapping) come out too, so sentences map across tokenizers, and the model's rank of each
token (1 + how many vocabulary entries score higher, clipped at `RANK_CLIP`), computed from the same
logits chunk and stored as an integer (the rank-surprisal ratio needs it).

>>> scorer = TeacherForcedScorer("toyworld/models/student")            # doctest: +SKIP
>>> table = scorer.score([ScoringItem("t1", "Compute 2+3.", "<think>\\n2+3=5.\\n</think>\\n\\\\boxed{5}")])  # doctest: +SKIP
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import pyarrow as pa

from tasks.common.threads import torch_threads
from tasks.generate.backend import model_id as default_model_id

TOKEN_LOGPROBS_SCHEMA = pa.schema(
    [
        ("trace_id", pa.string()),
        ("model_id", pa.string()),
        ("token_ids", pa.list_(pa.int32())),
        ("logprobs", pa.list_(pa.float32())),
        ("char_starts", pa.list_(pa.int32())),
        ("context_kind", pa.string()),
        ("ranks", pa.list_(pa.int32())),
    ]
)
CONTEXT_KINDS = ("recorded", "recorded_messages", "problem_template")
# the model's rank of each completion token (1 = its top choice), clipped here: the rank-surprisal ratio
# (arXiv 2601.14249) clips at r = 100, and the clipped rank is all that is stored
RANK_CLIP = 100


class ScoringError(RuntimeError):
    """A model/tokenizer cannot be scored as configured; the message says what to change."""


@dataclass(frozen=True)
class ScoringConfig:
    device: str = field(default="auto", metadata={"help": "'auto' (cuda when available), 'cpu', 'cuda', 'cuda:1', ..."})
    dtype: str = field(
        default="auto",
        metadata={"help": "'auto' (bfloat16 on CUDA, float32 on CPU), 'float32', 'bfloat16', 'float16'; "
                  "log_softmax always runs in float32"},
    )
    cpu_threads: int | None = field(
        default=None, metadata={"help": "torch CPU threads while scoring on CPU (None = torch's default)"}
    )
    max_batch_size: int = field(default=32, metadata={"help": "sequences per forward pass"})
    max_batch_tokens: int = field(default=16384, metadata={"help": "padded tokens (batch x longest) per forward pass"})
    chunk_tokens: int = field(
        default=1024,
        metadata={"help": "completion positions per log_softmax chunk (memory = chunk x vocab floats)"},
    )
    max_length: int | None = field(
        default=None,
        metadata={"help": "max prompt+completion tokens; longer completions are scored up to the limit "
                  "(default: the model's max_position_embeddings)"},
    )
    encode_group: int = field(
        default=128,
        metadata={"help": "traces tokenized at a time; the accelerator scores one group while a host thread encodes the next"},
    )
    use_chat_template: bool = field(
        default=True,
        metadata={"help": "items without a recorded context only (imported traces): render the problem with the "
                  "tokenizer's chat template (user turn + generation prompt)"},
    )
    system_prompt: str | None = field(
        default=None, metadata={"help": "items without a recorded context only: system message added before the user turn"}
    )

    def __str__(self) -> str:
        from tasks.common.ids import config_fingerprint

        return config_fingerprint(self)


class PromptContext(NamedTuple):
    """A recorded context: rendered `text` used verbatim, or chat `messages` ((role, content), ...)
    rendered with the scoring model's own chat template. `kind` is stored with the scores."""

    kind: str
    text: str | None = None
    messages: tuple[tuple[str, str], ...] | None = None
    is_chat: bool = True  # verbatim chat text carries its own special tokens; a raw prompt gets the tokenizer's


class ScoringItem(NamedTuple):
    trace_id: str
    prompt_text: str  # the problem: used only when `context` is None (context_kind 'problem_template')
    completion_text: str
    context: PromptContext | None = None


@dataclass
class _Encoded:
    item: ScoringItem
    prompt_ids: list[int]
    completion_ids: list[int]
    char_starts: list[int]
    context_kind: str = "problem_template"

    @property
    def length(self) -> int:
        return len(self.prompt_ids) + len(self.completion_ids)


def resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def resolve_dtype(name: str, device: str):
    import torch

    if name == "auto":
        if device.startswith("cuda") and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]
    except KeyError:
        raise ScoringError(f"ScoringConfig.dtype must be auto, float32, bfloat16 or float16, not {name!r}") from None


class TeacherForcedScorer:
    """Loads one causal LM + tokenizer and scores completions with it.

    Args:
        model: a local folder or hub id (loaded with AutoModelForCausalLM / AutoTokenizer), or an
            already loaded model (then pass `tokenizer` too).
        model_id: the id written next to the log-probs (default `tasks.generate.backend.model_id(model)`).
    """

    def __init__(self, model, cfg: ScoringConfig = ScoringConfig(), *, tokenizer=None, model_id: str | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        if isinstance(model, (str, Path)):
            self.model_id = model_id or default_model_id(model)
            dtype = resolve_dtype(cfg.dtype, self.device)
            self.tokenizer = tokenizer or AutoTokenizer.from_pretrained(str(model))
            self.model = AutoModelForCausalLM.from_pretrained(str(model), dtype=dtype)
        else:
            if tokenizer is None:
                raise ScoringError("pass tokenizer= with an already loaded model")
            self.model_id = model_id or getattr(model, "name_or_path", None) or type(model).__name__
            self.tokenizer = tokenizer
            self.model = model
        self.model.to(self.device).eval()
        if not getattr(self.tokenizer, "is_fast", False):
            raise ScoringError(
                f"{self.model_id}: teacher-forced scoring needs a fast tokenizer (character offsets); "
                "save the tokenizer with `tokenizers` support or convert it with AutoTokenizer(use_fast=True)"
            )
        if cfg.use_chat_template and not getattr(self.tokenizer, "chat_template", None):
            raise ScoringError(
                f"{self.model_id}: the tokenizer has no chat template; set one or score with use_chat_template=False"
            )
        mpe = getattr(self.model.config, "max_position_embeddings", None)
        self.max_length = cfg.max_length or mpe or 1 << 30
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = self.tokenizer.eos_token_id if self.tokenizer.eos_token_id is not None else 0
        self._torch = torch
        self._split_head = self._check_split_head()

    # -- encoding ----------------------------------------------------------------------------------
    def render_prompt(self, prompt_text: str) -> str:
        """The prompt string the model sees before the completion."""
        if not self.cfg.use_chat_template:
            return prompt_text
        messages = []
        if self.cfg.system_prompt:
            messages.append({"role": "system", "content": self.cfg.system_prompt})
        messages.append({"role": "user", "content": prompt_text})
        return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def encode(self, item: ScoringItem) -> _Encoded:
        return self.encode_many([item])[0]

    def render_context(self, item: ScoringItem) -> tuple[str, bool, str]:
        """(prompt text, add the tokenizer's special tokens?, context_kind) for one item."""
        ctx = item.context
        if ctx is None:
            return self.render_prompt(item.prompt_text), not self.cfg.use_chat_template, "problem_template"
        if ctx.kind not in CONTEXT_KINDS:
            raise ScoringError(f"trace {item.trace_id}: context kind must be one of {CONTEXT_KINDS}, not {ctx.kind!r}")
        if ctx.messages is not None:
            if not getattr(self.tokenizer, "chat_template", None):
                raise ScoringError(f"trace {item.trace_id} was sampled from a chat prompt but {self.model_id}'s "
                                   "tokenizer has no chat template; set one to score it")
            messages = [{"role": role, "content": content} for role, content in ctx.messages]
            return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False), False, ctx.kind
        if ctx.text is None:
            raise ScoringError(f"trace {item.trace_id}: a recorded context needs its text or its messages")
        return ctx.text, not ctx.is_chat, ctx.kind

    def encode_many(self, items: Sequence[ScoringItem]) -> list[_Encoded]:
        """Render each distinct context once, tokenize contexts and completions in batched calls."""
        tok = self.tokenizer
        contexts = [self.render_context(it) for it in items]
        by_prompt: dict[tuple[str, bool], list[int]] = {}
        for special in (False, True):
            texts = list(dict.fromkeys(text for text, sp, _ in contexts if sp is special))
            if texts:
                ids = tok(texts, add_special_tokens=special)["input_ids"]
                by_prompt.update({(t, special): list(x) for t, x in zip(texts, ids)})
        enc = tok([it.completion_text for it in items], add_special_tokens=False, return_offsets_mapping=True) if items else None
        out = []
        for i, it in enumerate(items):
            prompt_ids = list(by_prompt[contexts[i][:2]])
            if not prompt_ids:
                if tok.bos_token_id is None:
                    raise ScoringError(f"trace {it.trace_id}: empty prompt and no BOS token: nothing to condition on")
                prompt_ids = [tok.bos_token_id]
            room = max(self.max_length - len(prompt_ids), 0)
            ids = enc["input_ids"][i][:room]
            starts = [int(a) for a, _ in enc["offset_mapping"][i][:room]]
            out.append(_Encoded(it, prompt_ids, list(ids), starts, contexts[i][2]))
        return out

    # -- forward ------------------------------------------------------------------------------------
    def _check_split_head(self) -> bool:
        """True when body + output head reproduces the model's own logits (then logits are chunked)."""
        torch = self._torch
        head = self.model.get_output_embeddings()
        body = self.model.base_model
        if head is None or body is self.model:
            return False
        ids = torch.arange(1, min(9, self.model.config.vocab_size), device=self.device)[None]
        with torch.inference_mode():
            ref = self.model(input_ids=ids).logits.float()
            mine = self._head(head, body(input_ids=ids).last_hidden_state)
        return bool(torch.allclose(ref, mine, atol=1e-3, rtol=1e-3))

    def _head(self, head, hidden):
        return self._head_raw(head, hidden).float()

    def _head_raw(self, head, hidden):
        logits = head(hidden)
        cap = getattr(self.model.config, "final_logit_softcapping", None)
        if cap:
            logits = torch_tanh_cap(logits.float(), cap)
        return logits

    def _score_batch(self, batch: list[_Encoded]):
        """(2, n) tensor of one batch, flat in batch order, left on the device (no sync): row 0 the completion
        tokens' log-probs, row 1 their ranks (clipped at RANK_CLIP)."""
        import numpy as np

        torch = self._torch
        width = max(e.length for e in batch)
        ids = np.full((len(batch), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        want = np.zeros((len(batch), width), dtype=bool)  # positions whose NEXT token is scored
        for b, e in enumerate(batch):
            n_p, n = len(e.prompt_ids), e.length
            ids[b, :n_p] = e.prompt_ids
            ids[b, n_p:n] = e.completion_ids
            mask[b, :n] = 1
            want[b, n_p - 1 : n - 1] = True
        # flat positions and targets computed on the host: boolean indexing on the device would sync
        pos = np.flatnonzero(want.reshape(-1))
        tgt = ids.reshape(-1)[pos + 1]
        cuda = self.device.startswith("cuda")

        def put(a):
            t = torch.from_numpy(a)
            return t.pin_memory().to(self.device, non_blocking=True) if cuda else t

        ids_t, mask_t, pos_t, targets = put(ids), put(mask), put(pos), put(tgt)
        with torch.inference_mode():
            if self._split_head:
                hidden = self.model.base_model(input_ids=ids_t, attention_mask=mask_t).last_hidden_state
                hidden = hidden.reshape(-1, hidden.shape[-1]).index_select(0, pos_t)
                head = self.model.get_output_embeddings()
                parts = []
                for s in range(0, hidden.shape[0], self.cfg.chunk_tokens):
                    logits = self._head_raw(head, hidden[s : s + self.cfg.chunk_tokens])
                    # log_softmax in float32 straight from the head's dtype (no separate cast pass)
                    logp = torch.log_softmax(logits, dim=-1, dtype=torch.float32)
                    parts.append(_logprob_and_rank(logp, targets[s : s + self.cfg.chunk_tokens]))
                    del logits, logp
                return torch.cat(parts, dim=1) if parts else torch.zeros((2, 0), device=self.device)
            rows = []  # models whose head is not a plain projection: full logits, one row at a time
            for b, e in enumerate(batch):
                logits = self.model(input_ids=ids_t[b : b + 1], attention_mask=mask_t[b : b + 1]).logits[0]
                lo, hi = len(e.prompt_ids) - 1, e.length - 1
                sel = logits[lo:hi].float()
                rows.append(_logprob_and_rank(torch.log_softmax(sel, -1), ids_t[b, lo + 1 : hi + 1]))
            return torch.cat(rows, dim=1)

    def batches(self, encoded: list[_Encoded]) -> list[list[_Encoded]]:
        """Length-sorted batches bounded by `max_batch_size` and `max_batch_tokens` (padded)."""
        order = sorted(encoded, key=lambda e: e.length, reverse=True)
        out: list[list[_Encoded]] = []
        cur: list[_Encoded] = []
        for e in order:
            width = cur[0].length if cur else e.length
            if cur and (len(cur) + 1 > self.cfg.max_batch_size or (len(cur) + 1) * width > self.cfg.max_batch_tokens):
                out.append(cur)
                cur = []
            cur.append(e)
        if cur:
            out.append(cur)
        return out

    def score(self, items: Sequence[ScoringItem]) -> pa.Table:
        """Arrow table (trace_id, model_id, token_ids, logprobs, char_starts, context_kind, ranks), one row per item, input order."""
        with torch_threads(self.cfg.cpu_threads if self.device == "cpu" else None):
            return self._score(items)

    def _score(self, items: Sequence[ScoringItem]) -> pa.Table:
        import numpy as np

        torch = self._torch
        started = time.perf_counter()
        # Pipeline: items sorted by character length (a cheap proxy of token length) are encoded a
        # group at a time by a producer thread (the Rust tokenizer releases the GIL), while this
        # thread queues the previous group's batches on the device without a host sync. One
        # device-to-host transfer at the end.
        order_idx = sorted(range(len(items)), key=lambda i: -(len(items[i].prompt_text) + len(items[i].completion_text)))
        group = max(self.cfg.encode_group, 1)
        groups = [[items[i] for i in order_idx[g : g + group]] for g in range(0, len(order_idx), group)]
        encoded_sorted: list[_Encoded] = []
        pieces: list[tuple[list[_Encoded], object]] = []
        for chunk in _prefetch(self.encode_many, groups):
            encoded_sorted += chunk
            for batch in self.batches([e for e in chunk if e.completion_ids]):
                pieces.append((batch, self._score_batch(batch)))
        encoded = [None] * len(items)
        for i, e in zip(order_idx, encoded_sorted):
            encoded[i] = e
        flat = torch.cat([p for _, p in pieces], dim=1).float().cpu().numpy() if pieces else np.zeros((2, 0), np.float32)
        where: dict[int, tuple[int, int]] = {}
        k = 0
        for batch, _ in pieces:
            for e in batch:
                where[id(e)] = (k, k + len(e.completion_ids))
                k += len(e.completion_ids)
        lengths = np.array([len(e.completion_ids) for e in encoded], dtype=np.int32)
        offsets = np.zeros(len(encoded) + 1, dtype=np.int32)
        np.cumsum(lengths, out=offsets[1:])
        order = np.concatenate([np.arange(*where[id(e)]) for e in encoded if e.completion_ids] or [np.zeros(0, np.int64)])
        logprobs = flat[0][order.astype(np.int64)] if len(order) else np.zeros(0, np.float32)
        ranks = flat[1][order.astype(np.int64)].astype(np.int32) if len(order) else np.zeros(0, np.int32)
        token_ids = np.fromiter((t for e in encoded for t in e.completion_ids), dtype=np.int32, count=int(offsets[-1]))
        starts = np.fromiter((c for e in encoded for c in e.char_starts), dtype=np.int32, count=int(offsets[-1]))
        off = pa.array(offsets, pa.int32())
        self.last_seconds = time.perf_counter() - started
        self.last_tokens = int(offsets[-1])
        return pa.table(
            {
                "trace_id": pa.array([e.item.trace_id for e in encoded], pa.string()),
                "model_id": pa.array([self.model_id] * len(encoded), pa.string()),
                "token_ids": pa.ListArray.from_arrays(off, pa.array(token_ids, pa.int32())),
                "logprobs": pa.ListArray.from_arrays(off, pa.array(logprobs.astype(np.float32), pa.float32())),
                "char_starts": pa.ListArray.from_arrays(off, pa.array(starts, pa.int32())),
                "context_kind": pa.array([e.context_kind for e in encoded], pa.string()),
                "ranks": pa.ListArray.from_arrays(off, pa.array(ranks, pa.int32())),
            },
            schema=TOKEN_LOGPROBS_SCHEMA,
        )

    def describe(self) -> str:
        return json.dumps({"model_id": self.model_id, "device": self.device, "split_head": self._split_head})


def _prefetch(fn, args_list):
    """Yield fn(a) for each a, computing the next one in a background thread (errors re-raised here)."""
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()

    def work():
        try:
            for a in args_list:
                if stop.is_set():
                    return
                q.put((True, fn(a)))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
            q.put((False, exc))
            return
        q.put((True, _DONE))

    thread = threading.Thread(target=work, name="scoring-encode", daemon=True)
    thread.start()
    try:
        while True:
            ok, value = q.get()
            if not ok:
                raise value
            if value is _DONE:
                return
            yield value
    finally:
        stop.set()
        while thread.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(0.01)


_DONE = object()


def _logprob_and_rank(logp, targets):
    """(2, n): the targets' log-probs and their ranks 1 + #{entries with a higher log-prob}, clipped at RANK_CLIP."""
    import torch

    chosen = logp.gather(1, targets[:, None])
    rank = (logp > chosen).sum(-1).add_(1).clamp_(max=RANK_CLIP)
    return torch.stack([chosen[:, 0], rank.to(chosen.dtype)])


def torch_tanh_cap(logits, cap: float):
    import torch

    return torch.tanh(logits / cap) * cap
