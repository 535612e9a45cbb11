"""Verification stage: every trace gets a verdict `correct | incorrect | unverifiable | timeout | error`.

- `tasks.verify.math`: math-verify in a `DeadlinePool` (hard kill per item), majority vote without a reference.
- `tasks.verify.code`: final fenced code block judged against the prompt's assert-tests: `tasks.verify.judge`
  splits each test so only the calls run in `tasks.verify.sandbox` (the candidate never sees an
  expected value) and the comparison is made here, on values received as JSON.
- `tasks.verify.core`: routing by domain/reference, `VerifyConfig` (its parts' fingerprints name verifier versions).
The Prefect shell is `flows.verify.verify_flow`.
"""
