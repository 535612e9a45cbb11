"""Verdict statuses (dependency-free: the math worker imports this and math-verify only)."""

CORRECT, INCORRECT, UNVERIFIABLE, TIMEOUT, ERROR = "correct", "incorrect", "unverifiable", "timeout", "error"
STATUSES = (CORRECT, INCORRECT, UNVERIFIABLE, TIMEOUT, ERROR)
DECISIVE = (CORRECT, INCORRECT)
