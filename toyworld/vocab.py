"""Fast tokenizers for the toy models, built with the `tokenizers` library.

Teachers: one token per character (printable ASCII + newline/tab). The student: the same
characters plus a few multi-character tokens (`<think>`, `</think>`, `\\boxed{`, ...), so the
teacher and student tokenize the same text differently and divergence is exercised across
tokenizers. Both support `return_offsets_mapping=True` and carry a chat template.
"""

from __future__ import annotations

import string

from tokenizers import AddedToken, Tokenizer, decoders, models
from transformers import PreTrainedTokenizerFast

BOS, EOS, PAD, UNK = "<s>", "</s>", "<pad>", "<unk>"
ROLE_TOKENS = ["<|system|>", "<|user|>", "<|assistant|>"]
CHARS = [c for c in string.printable if c not in "\r\x0b\x0c"]  # 97 chars incl. space, \n, \t
STUDENT_MERGED = ["<think>", "</think>", "\\boxed{", "```python", "Compute ", "return "]

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


def build_tokenizer(kind: str) -> PreTrainedTokenizerFast:
    """kind: 'teacher' (char level) or 'student' (char level + merged tokens)."""
    if kind not in ("teacher", "student"):
        raise ValueError(f"tokenizer kind must be 'teacher' or 'student', got {kind!r}")
    specials = [PAD, BOS, EOS, UNK, *ROLE_TOKENS]
    vocab = {tok: i for i, tok in enumerate(specials + CHARS)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=UNK))
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in specials])
    if kind == "student":
        tok.add_tokens([AddedToken(t, normalized=False, special=False) for t in STUDENT_MERGED])
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
