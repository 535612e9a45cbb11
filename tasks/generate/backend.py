"""The backend interface every generation engine implements, and the factory that picks one.

>>> make_backend(EngineConfig(model="/models/teacher-a", backend="hf")).__class__.__name__
'HFBackend'
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Protocol

from tasks.common.ids import stable_hash
from tasks.generate.config import EngineConfig, SamplingConfig
from tasks.generate.requests import GenerationRequest, GenerationResult

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")
WEIGHT_META = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json")
FULL_HASH_LIMIT = 2 * 1024**3  # above 2 GB hash sizes + head/tail of each file (hashing 100 GB takes minutes)
PARTIAL_BYTES = 16 * 1024**2


class GenerateError(RuntimeError):
    """Base of generation errors; the message names the teacher, file or request."""


class BackendUnavailableError(GenerateError):
    """The engine could not serve a whole shard (endpoint down, worker died): worth a retry."""


class Backend(Protocol):
    engine: EngineConfig

    def model_id(self) -> str:
        """name@revision, or name@<hash of the weights>."""

    def template_hash(self, sampling: SamplingConfig) -> str:
        """Hash of what turns a problem into the model's input (chat template, prompt template)."""

    def count_prompt_tokens(self, requests: list[GenerationRequest], use_chat_template: bool) -> tuple[list[int], bool]:
        """(prompt tokens per request, exact?) without generating anything (dry runs)."""

    def generate(self, requests: list[GenerationRequest], use_chat_template: bool) -> list[GenerationResult]:
        """One result per request, in order. Per-request failures come back as results with an error_code."""

    def close(self) -> None: ...


def weights_fingerprint(model_dir: str | os.PathLike) -> str:
    """sha256 over the weight and config files of a local model directory (names, sizes, contents)."""
    root = Path(model_dir)
    if not root.is_dir():
        raise GenerateError(f"model directory {root} does not exist (engine.model)")
    files = sorted(p for p in root.rglob("*") if p.is_file() and (p.suffix in WEIGHT_SUFFIXES or p.name in WEIGHT_META))
    if not any(p.suffix in WEIGHT_SUFFIXES for p in files):
        raise GenerateError(f"model directory {root} holds no weight files ({', '.join(WEIGHT_SUFFIXES)})")
    total = sum(p.stat().st_size for p in files)
    digest = hashlib.sha256()
    for path in files:
        size = path.stat().st_size
        digest.update(f"{path.relative_to(root)}:{size}\n".encode())
        with path.open("rb") as fh:
            if total <= FULL_HASH_LIMIT:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
            else:
                digest.update(fh.read(PARTIAL_BYTES))
                fh.seek(max(0, size - PARTIAL_BYTES))
                digest.update(fh.read(PARTIAL_BYTES))
    return digest.hexdigest()


def model_id(model: str, *, name: str | None = None, revision: str | None = None) -> str:
    """The one id of a model in potstill (traces, log-probs, sentence scores, evaluations): `<name>@<revision>`.

    A local folder's revision is the hash of its weights (`weights_fingerprint`, 12 characters) and
    its default name the folder's name; a hub id without a revision is the id itself.
    """
    if revision:
        return f"{name or model}@{revision}"
    if os.path.isdir(model):
        return f"{name or os.path.basename(os.path.normpath(model))}@{weights_fingerprint(model)[:12]}"
    return model


def local_model_id(engine: EngineConfig) -> str:
    """`model_id` of an engine's model; a model without a revision must be a local folder."""
    return model_id(engine.model, name=engine.display_name,
                    revision=engine.revision or weights_fingerprint(engine.model)[:12])


def local_template_hash(tokenizer, sampling: SamplingConfig) -> str:
    """Chat template text (or raw mode) + the prompt template."""
    if sampling.use_chat_template:
        template = getattr(tokenizer, "chat_template", None)
        if not template:
            raise GenerateError(
                f"tokenizer {getattr(tokenizer, 'name_or_path', '?')} has no chat template; set use_chat_template=False"
            )
        return stable_hash("chat", template, sampling.prompt_template, length=16)
    return stable_hash("raw", sampling.prompt_template, length=16)


def render_prompt_text(tokenizer, request: GenerationRequest, use_chat_template: bool) -> str:
    """The prompt text handed to the tokenizer: the chat template over the request's messages with
    the generation prompt, or the raw prompt. Stored with each trace as its context."""
    if use_chat_template:
        return tokenizer.apply_chat_template(request.messages(), add_generation_prompt=True, tokenize=False)
    return request.prompt_text


def prompt_text_ids(tokenizer, text: str, use_chat_template: bool) -> list[int]:
    """Token ids of a rendered prompt: a chat rendering carries its own special tokens, a raw prompt gets the tokenizer's."""
    return list(tokenizer(text, add_special_tokens=not use_chat_template)["input_ids"])


def render_prompt_ids(tokenizer, request: GenerationRequest, use_chat_template: bool) -> list[int]:
    """Token ids of the model input for one request (chat template with generation prompt, or raw text)."""
    return prompt_text_ids(tokenizer, render_prompt_text(tokenizer, request, use_chat_template), use_chat_template)


def make_backend(engine: EngineConfig) -> Backend:
    """The backend named by `engine.backend`; models load lazily on first use."""
    if engine.backend == "hf":
        from tasks.generate.hf_backend import HFBackend

        return HFBackend(engine)
    if engine.backend == "openai":
        from tasks.generate.openai_backend import OpenAIBackend

        return OpenAIBackend(engine)
    if engine.backend == "vllm":
        from tasks.generate.vllm_backend import VLLMBackend

        return VLLMBackend(engine)
    raise GenerateError(f"unknown backend {engine.backend!r}")
