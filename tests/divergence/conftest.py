"""Tiny random causal LMs with three different fast tokenizers (char-level, trained BPE, trained byte-level BPE)."""

from __future__ import annotations

import string
from pathlib import Path

import pytest

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
SPECIALS = ["<pad>", "<s>", "</s>", "<unk>", "<|system|>", "<|user|>", "<|assistant|>"]
CHARS = [c for c in string.printable if c not in "\r\x0b\x0c"]

CORPUS = [
    "<think>\n5*3=15.\n7+15=22.\nCheck: 22-4=18.\n</think>\n\\boxed{18}",
    "<think>\n2+2=4. Then 4*3=12! Is $a.b$ ok?\n\n</think>\n\\boxed{12}",
    "Compute 7 + 5 * 3 - 4. Wait, let me re-check. 5*3 is 15.",
]


def _tokenizer(kind: str):
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if kind == "char":
        vocab = {t: i for i, t in enumerate(SPECIALS + CHARS)}
        tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
        tk.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    elif kind == "bytes":  # byte-level BPE (GPT-2/Qwen style): a multi-byte character the corpus lacks is 2-3 byte tokens
        tk = Tokenizer(models.BPE())
        tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tk.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIALS, show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tk.train_from_iterator(CORPUS * 20 + ["5×3=15 × 2"] * 5, trainer)
    else:  # BPE over whole strings: multi-char tokens that straddle sentence boundaries (".\n7")
        tk = Tokenizer(models.BPE(unk_token="<unk>"))
        trainer = trainers.BpeTrainer(vocab_size=160, special_tokens=SPECIALS, initial_alphabet=CHARS, show_progress=False)
        tk.train_from_iterator(CORPUS * 20, trainer)
    tk.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIALS])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tk, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
        additional_special_tokens=SPECIALS[4:], clean_up_tokenization_spaces=False,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def _model(tokenizer, seed: int, path: Path) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, head_dim=16, max_position_embeddings=256,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():  # larger weights than the default init: probabilities far from uniform
        for p in model.parameters():
            p.mul_(8.0) if p.dim() == 2 else None
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """{'teacher': char-level model, 'student': BPE model, 'teacher2': another char-level model,
    'student_bytes': byte-level BPE model}."""
    root = tmp_path_factory.mktemp("tiny-models")
    return {
        "teacher": _model(_tokenizer("char"), 1, root / "teacher"),
        "student": _model(_tokenizer("bpe"), 2, root / "student"),
        "teacher2": _model(_tokenizer("char"), 3, root / "teacher2"),
        "student_bytes": _model(_tokenizer("bytes"), 4, root / "student_bytes"),
    }


def _ensure_token_table(wh) -> None:
    """Migrate the warehouse (raw.raw_token_logprobs comes from the generation stage's migration)."""
    wh.ensure()


def _seed_traces(wh, rows: list[dict]) -> None:
    """rows: trace_id, prompt_id, problem_text, model_id, completion_text (+ optional trace columns)."""
    import polars as pl

    from warehouse.runs import utcnow

    now = utcnow()
    prompts = pl.DataFrame([
        {"prompt_id": r["prompt_id"], "source": "test", "domain": "math", "problem_text": r["problem_text"],
         "split": r.get("split", "train"), "ingested_at": now, "run_id": "seed"}
        for r in rows
    ]).unique("prompt_id", keep="first")
    traces = pl.DataFrame([
        {"trace_id": r["trace_id"], "prompt_id": r["prompt_id"], "model_id": r["model_id"], "origin": "generated",
         "sample_index": r.get("sample_index", 0), "completion_text": r["completion_text"],
         "n_completion_tokens": r.get("n_completion_tokens", len(r["completion_text"])),
         "is_truncated": False, "temperature": r.get("temperature", 0.8), "created_at": now, "run_id": "seed"}
        for r in rows
    ])
    wh.load("raw.raw_prompts", prompts, key=["prompt_id"])
    wh.load("raw.raw_traces", traces, key=["trace_id"])


@pytest.fixture
def ensure_token_table():
    return _ensure_token_table


@pytest.fixture
def seed_traces():
    return _seed_traces


_F1_LINES = pytest.StashKey[dict]()


@pytest.fixture
def splitter_f1_lines(request) -> dict:
    """Where test_divergence_splitter_f1 leaves its F1 lines for the terminal summary below."""
    return request.config.stash.setdefault(_F1_LINES, {})


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Print the splitter boundary F1 lines at the end of every run that computed them (make test)."""
    lines = config.stash.get(_F1_LINES, {})
    if lines:
        terminalreporter.section("sentence splitter boundary F1")
        for version in sorted(lines):
            terminalreporter.write_line(lines[version])
