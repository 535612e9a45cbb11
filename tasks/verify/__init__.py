"""Verification stage: every trace gets a verdict `correct | incorrect | unverifiable | timeout | error`.

- `tasks.verify.math`: math-verify in a `DeadlinePool` (hard kill per item), majority vote without a reference.
- `tasks.verify.code`: final fenced code block run against the prompt's assert-tests in `tasks.verify.sandbox`.
- `tasks.verify.core`: routing by domain/reference, `VerifyConfig` (its parts' fingerprints name verifier versions).
The Prefect shell is `flows.verify.verify_flow`.
"""
