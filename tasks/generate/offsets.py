"""Character offsets of tokens inside a completion, so log-probs map to sentences across tokenizers."""

from __future__ import annotations

from collections.abc import Sequence


def char_starts_from_pieces(pieces: Sequence[str]) -> list[int]:
    """Offsets when the token strings concatenate to the text.

    >>> char_starts_from_pieces(["ab", "c", "", "de"])
    [0, 2, 3, 3]
    """
    out, pos = [], 0
    for piece in pieces:
        out.append(pos)
        pos += len(piece)
    return out


def char_starts_from_bytes(pieces: Sequence[bytes]) -> list[int]:
    """Offsets from each token's UTF-8 bytes (a token may hold part of a character).

    A token starting inside a multi-byte character gets that character's offset.

    >>> char_starts_from_bytes([b"a", "é".encode()[:1], "é".encode()[1:], b"b"])
    [0, 1, 1, 2]
    """
    out: list[int] = []
    buf = b""
    for piece in pieces:
        out.append(len(buf.decode("utf-8", errors="ignore")))
        buf += piece
    return out


def token_char_starts(tokenizer, token_ids: Sequence[int], text: str | None = None) -> tuple[str, list[int]]:
    """(text, char start of each token) for ids decoded with `tokenizer` (special tokens kept).

    Fast path: single-token decodes concatenate to the full decode (char-level, most byte-level
    BPE). Otherwise each start is the length of the decoded prefix (monotone, clipped to the text).
    """
    ids = list(token_ids)
    full = tokenizer.decode(ids, skip_special_tokens=False) if text is None else text
    if not ids:
        return full, []
    pieces = tokenizer.batch_decode([[i] for i in ids], skip_special_tokens=False)
    if "".join(pieces) == full:
        return full, char_starts_from_pieces(pieces)
    starts, high = [], 0
    for i in range(len(ids)):
        prefix = tokenizer.decode(ids[:i], skip_special_tokens=False) if i else ""
        n = len(prefix.rstrip("\ufffd"))  # a prefix that ends inside a character decodes to U+FFFD
        high = min(max(high, n), len(full))
        starts.append(high)
    return full, starts
