import pytest

from tasks.evaluate.backend import Sample
from tasks.evaluate.config import EvalConfig
from tasks.evaluate.core import evaluate_problems
from tasks.evaluate.metrics import summarize
from tasks.evaluate.problems import normalize_problems

PROBLEMS = normalize_problems(
    [{"id": "m1", "problem": "Compute 1 + 2.", "answer": "3"}, {"id": "m2", "problem": "Compute 2 * 3.", "answer": "6"}],
    where="inline",
)


class ScriptedGenerator:
    """Answers from a table: greedy gets the first answer, samples cycle through the list."""

    model_id = "scripted"

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.calls: list[tuple[float, int]] = []

    def generate(self, prompts, *, n, temperature, top_p, max_new_tokens, seed, system_prompt):
        self.calls.append((temperature, n))
        out = []
        for p in prompts:
            answers = self.answers[p]
            picks = answers[:1] if temperature == 0 else [answers[i % len(answers)] for i in range(n)]
            out.append([Sample(f"\\boxed{{{a}}}", len(a), "stop") for a in picks])
        return out


def test_greedy_then_sampled_and_verified():
    gen = ScriptedGenerator({"Compute 1 + 2.": ["3", "4"], "Compute 2 * 3.": ["5", "6", "7", "8"]})
    samples = evaluate_problems(PROBLEMS, gen, EvalConfig(k=2, n_samples=4))
    assert gen.calls == [(0.0, 1), (0.8, 4)]
    assert samples.height == 2 * (1 + 4)
    by = {(r["problem_id"], r["mode"], r["sample_index"]): r["verdict_status"] for r in samples.to_dicts()}
    assert by[("m1", "greedy", 0)] == "correct" and by[("m2", "greedy", 0)] == "incorrect"
    assert [by[("m2", "sampled", i)] for i in range(4)] == ["incorrect", "correct", "incorrect", "incorrect"]
    all_row = summarize(samples, k=2).row(0, named=True)
    # m1: 2 of 4 correct -> pass@2 = 1 - C(2,2)/C(4,2) = 5/6; m2: 1 of 4 -> 1 - C(3,2)/C(4,2) = 1/2
    assert all_row["pass_at_1"] == 0.5 and all_row["pass_at_k"] == pytest.approx((5 / 6 + 1 / 2) / 2)


def test_stage_generator_is_reproducible_and_batch_independent(tiny_lm):
    from tasks.evaluate.backend import StageGenerator

    kwargs = {"top_p": 1.0, "max_new_tokens": 6, "system_prompt": None, "temperature": 1.0, "seed": 7}
    gen = StageGenerator(str(tiny_lm), device="cpu", batch_size=4)
    both = gen.generate(["Compute 1 + 2.", "Hi"], n=3, **kwargs)
    assert [len(s) for s in both] == [3, 3]
    assert all(s.n_tokens <= 6 and s.finish_reason in ("stop", "length") for row in both for s in row)
    alone = StageGenerator(str(tiny_lm), device="cpu", batch_size=1).generate(["Hi"], n=3, **kwargs)
    assert alone[0] == both[1]  # seeds come from (seed, prompt, index), not from the batch
    greedy = gen.generate(["Hi"], n=1, **{**kwargs, "temperature": 0.0})
    assert greedy == gen.generate(["Hi"], n=1, **{**kwargs, "temperature": 0.0, "seed": 99})


def test_evaluate_flow_takes_every_eval_config_field():
    """A recipe's evaluate section is passed to evaluate_flow as keywords (fine-tune on publish, experiments)."""
    import dataclasses
    import inspect

    from flows.evaluate import evaluate_flow
    from tasks.evaluate.config import EvalConfig

    params = set(inspect.signature(evaluate_flow.fn).parameters)
    assert {f.name for f in dataclasses.fields(EvalConfig)} <= params
