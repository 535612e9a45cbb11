"""Token and cost accounting: dry-run plans before spending, and per-run totals after."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from tasks.generate.config import EngineConfig, SamplingConfig


@dataclass
class TeacherPlan:
    """What a run would do for one teacher. Completion tokens: `max_*` is the bound from max_tokens;
    `est_*` uses the teacher's mean completion length so far when it has traces, else the bound."""

    teacher: str
    model_id: str
    backend: str
    n_prompts: int
    n_requests: int
    n_done: int
    n_todo: int
    prompt_tokens: int
    prompt_tokens_exact: bool
    max_completion_tokens: int
    est_completion_tokens: int
    est_cost_usd: float | None
    max_cost_usd: float | None

    def as_dict(self) -> dict:
        return asdict(self)


def plan_teacher(
    *,
    engine: EngineConfig,
    model_id: str,
    sampling: SamplingConfig,
    n_prompts: int,
    n_requests: int,
    n_done: int,
    todo_prompt_tokens: list[int],
    exact: bool,
    mean_completion_tokens: float | None,
) -> TeacherPlan:
    n_todo = len(todo_prompt_tokens)
    prompt_tokens = int(sum(todo_prompt_tokens))
    max_out = n_todo * sampling.max_tokens
    est_out = round(n_todo * min(mean_completion_tokens, sampling.max_tokens)) if mean_completion_tokens else max_out
    return TeacherPlan(
        teacher=engine.display_name, model_id=model_id, backend=engine.backend, n_prompts=n_prompts,
        n_requests=n_requests, n_done=n_done, n_todo=n_todo, prompt_tokens=prompt_tokens, prompt_tokens_exact=exact,
        max_completion_tokens=max_out, est_completion_tokens=est_out,
        est_cost_usd=engine.cost_usd(prompt_tokens, est_out), max_cost_usd=engine.cost_usd(prompt_tokens, max_out),
    )


def format_plan(plans: list[TeacherPlan]) -> str:
    """A fixed-width table of dry-run plans.

    >>> print(format_plan([]).splitlines()[0].split()[:3])
    ['teacher', 'backend', 'requests']
    """
    head = f"{'teacher':<20} {'backend':<7} {'requests':>9} {'done':>8} {'todo':>8} {'prompt_tok':>11} {'est_out_tok':>12} {'max_out_tok':>12} {'est_cost$':>10} {'max_cost$':>10}"
    lines = [head]
    for p in plans:
        cost = lambda v: "-" if v is None else f"{v:.4f}"
        approx = "" if p.prompt_tokens_exact else "~"
        lines.append(
            f"{p.teacher[:20]:<20} {p.backend:<7} {p.n_requests:>9} {p.n_done:>8} {p.n_todo:>8} "
            f"{approx + str(p.prompt_tokens):>11} {p.est_completion_tokens:>12} {p.max_completion_tokens:>12} "
            f"{cost(p.est_cost_usd):>10} {cost(p.max_cost_usd):>10}"
        )
    return "\n".join(lines)
