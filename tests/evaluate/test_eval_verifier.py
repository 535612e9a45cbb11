import polars as pl

from tasks.evaluate.verifier import verify_samples

ADD = '["assert f(0) == 2", "assert f(1) == 5"]'
CASES = [
    # domain, completion, reference, tests, expected verdict, expected score
    ("math", "<think>\n5*3=15.\n</think>\n\\boxed{18}", "18", None, "correct", 1.0),
    ("math", "<think>\n\\boxed{18}\n</think>\n\\boxed{17}", "18", None, "incorrect", 0.0),  # only the answer part counts
    ("math", "\\boxed{\\frac{1}{2}}", "0.5", None, "correct", 1.0),
    ("math", "I cannot say.", "18", None, "unverifiable", 0.0),
    ("code", "```python\ndef f(x):\n    return 3*x + 2\n```", None, ADD, "correct", 1.0),
    ("code", "```python\ndef f(x):\n    return 2 if x == 0 else 0\n```", None, ADD, "incorrect", 0.5),
    ("code", "no code", None, ADD, "unverifiable", 0.0),
    ("code", "```python\nwhile True:\n    pass\n```", None, ADD, "timeout", 0.0),
    ("code", "```python\nimport os\nf = lambda x: 3*x + 2 if 'SECRET' not in os.environ else 0\n```", None, ADD, "correct", 1.0),
]


def test_verdicts_table(monkeypatch):
    monkeypatch.setenv("SECRET", "x")  # the sandbox gets a scrubbed environment
    rows = pl.DataFrame(
        [c[:4] for c in CASES],
        schema={"domain": pl.String, "completion_text": pl.String, "reference_answer": pl.String, "tests_json": pl.String},
        orient="row",
    )
    rows = rows.with_columns(is_truncated=pl.lit(False))
    out = verify_samples(rows)
    got = list(zip(out["verdict_status"], out["score"]))
    loop = [i for i, c in enumerate(CASES) if "while True" in c[1]]
    assert [g for i, g in enumerate(got) if i not in loop] == [(c[4], c[5]) for i, c in enumerate(CASES) if i not in loop]
    # an endless loop is stopped by the wall-clock deadline (timeout) or, on an idle machine, by the
    # sandbox's CPU-time limit first (the verify stage reports that as a failed run); never correct
    assert got[loop[0]] in (("timeout", 0.0), ("incorrect", 0.0))
