"""Fast tokenizers for the toy models, built with the `tokenizers` library.

Teachers: one token per character (printable ASCII, newline/tab and the multi-byte `×`, `−`,
`→` some phrasings use), `<think>`/`</think>` spelled out in characters. The student: a
**byte-level BPE** (GPT-2/Qwen style: Qwen2's pre-tokenizer split, one digit per pre-token,
bytes mapped to printable characters, BPE merges learned from a seeded corpus of toy-world text),
with `<think>` and `</think>` as added tokens (as in Qwen3) and the same chat template. So the
teacher and student tokenize the same text very differently (a multi-byte character is one
teacher token and one or two student byte tokens), and divergence is exercised across
tokenizers. Both support `return_offsets_mapping=True`.
"""

from __future__ import annotations

import string
from collections.abc import Iterable

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

BOS, EOS, PAD, UNK = "<s>", "</s>", "<pad>", "<unk>"
ROLE_TOKENS = ["<|system|>", "<|user|>", "<|assistant|>"]
THINK_TOKENS = ["<think>", "</think>"]
MULTIBYTE = ["×", "−", "→"]
CHARS = [c for c in string.printable if c not in "\r\x0b\x0c"] + MULTIBYTE  # 97 ASCII + 3 multi-byte
# Qwen2's pre-tokenizer split: letter runs, single digits, punctuation runs, whitespace
QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
STUDENT_VOCAB_SIZE = 512

# `{% generation %}` marks the assistant part (trl's assistant_only_loss reads it).
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}<|system|>{{ message['content'] }}\n"
    "{% elif message['role'] == 'user' %}<|user|>{{ message['content'] }}\n"
    "{% elif message['role'] == 'assistant' %}<|assistant|>{% generation %}{{ message['content'] }}{{ eos_token }}{% endgeneration %}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def _fast(tok: Tokenizer) -> PreTrainedTokenizerFast:
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        additional_special_tokens=ROLE_TOKENS,
        model_max_length=512,
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def teacher_tokenizer() -> PreTrainedTokenizerFast:
    """One token per character (no merges)."""
    specials = [PAD, BOS, EOS, UNK, *ROLE_TOKENS]
    vocab = {tok: i for i, tok in enumerate(specials + CHARS)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=UNK))
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in specials])
    return _fast(tok)


def student_tokenizer(corpus: Iterable[str], vocab_size: int = STUDENT_VOCAB_SIZE) -> PreTrainedTokenizerFast:
    """Byte-level BPE trained on `corpus` (deterministic for the same corpus and library version)."""
    specials = [PAD, BOS, EOS, UNK, *ROLE_TOKENS]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer)
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in specials])
    tok.add_tokens([AddedToken(t, normalized=False, special=False) for t in THINK_TOKENS])
    return _fast(tok)


def build_tokenizer(kind: str, corpus: Iterable[str] | None = None) -> PreTrainedTokenizerFast:
    """kind: 'teacher' (char level) or 'student' (byte-level BPE trained on `corpus`)."""
    if kind == "teacher":
        return teacher_tokenizer()
    if kind == "student":
        if corpus is None:
            raise ValueError("the student tokenizer is trained: pass its corpus")
        return student_tokenizer(corpus)
    raise ValueError(f"tokenizer kind must be 'teacher' or 'student', got {kind!r}")
