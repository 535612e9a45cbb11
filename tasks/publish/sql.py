"""SQL text for the per-dataset views (pure string builders; names are validated before use).

`curated.cur_sft_<name>` and `curated.cur_redi_pairs_<name>` are created by `publish_dataset` when
a version of dataset `<name>` is published (not from files under `warehouse/views/`, because their
names depend on the data). `<name>` is the dataset name with `-` and `.` replaced by `_`. Both
always show the *latest published* version; `sft_rows_sql(name, version)` gives any version.
"""

from __future__ import annotations

import re

DATASET_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
POSITIVE_STAGES = ("positive", "chosen")
NEGATIVE_STAGES = ("negative", "rejected")


class DatasetNameError(ValueError):
    """A dataset name that cannot name a view."""


def check_name(dataset_name: str) -> str:
    if not isinstance(dataset_name, str) or not DATASET_NAME.match(dataset_name):
        raise DatasetNameError(
            f"dataset name {dataset_name!r} is invalid: use 1-63 characters of a-z, 0-9, '_', '-', '.', "
            "starting with a letter or digit"
        )
    return dataset_name


def view_suffix(dataset_name: str) -> str:
    """`toy-math.v2` → `toy_math_v2` (the part after `cur_sft_`)."""
    return re.sub(r"[^a-z0-9_]", "_", check_name(dataset_name))


def sft_view_name(dataset_name: str) -> str:
    return f"curated.cur_sft_{view_suffix(dataset_name)}"


def redi_view_name(dataset_name: str) -> str:
    return f"curated.cur_redi_pairs_{view_suffix(dataset_name)}"


def _version_filter(dataset_name: str, version: int | None) -> str:
    name = check_name(dataset_name)
    if version is None:
        return (
            f"dataset_name = '{name}' and version = (select max(version) from curated.cur_datasets "
            f"where dataset_name = '{name}' and status = 'published')"
        )
    return f"dataset_name = '{name}' and version = {int(version)} and status = 'published'"


ASSISTANT_SQL = (
    "case when t.reasoning_text is null then coalesce(t.answer_text, t.completion_text) "
    "else '<think>\n' || t.reasoning_text || '\n</think>\n\n' || coalesce(t.answer_text, '') end"
)


def sft_rows_sql(dataset_name: str, version: int | None = None) -> str:
    """One row per trace of the version, chat format: user = problem, assistant = `<think>` + answer.

    The assistant text equals `tasks.common.text.join_think(reasoning_text, answer_text)`.
    """
    return f"""with versions as (
    select dataset_name, version from curated.cur_datasets where {_version_filter(dataset_name, version)}
),
rows as (
    select r.* from curated.cur_dataset_rows r join versions v using (dataset_name, version)
),
traces as (
    select * from staging.stg_traces
),
prompts as (
    select * from staging.stg_prompts
)
select
    r.dataset_name, r.version as dataset_version, r.rank, r.stage, r.trace_id, t.prompt_id, p.source,
    p.domain, t.model_id, t.temperature, t.n_completion_tokens,
    [
        {{'role': 'user', 'content': p.problem_text}},
        {{'role': 'assistant', 'content': {ASSISTANT_SQL}}}
    ] as messages
from rows r
join traces t using (trace_id)
join prompts p on p.prompt_id = t.prompt_id
order by r.rank, r.trace_id"""


def redi_pairs_sql(dataset_name: str, version: int | None = None) -> str:
    """One row per (correct, incorrect) pair of a prompt: the k-th positive with the k-th negative by rank.

    Positives are rows whose stage is `positive`/`chosen`, negatives `negative`/`rejected` (REDI,
    docs/methods.md#redi). Format: TRL preference data (`prompt`, `chosen`, `rejected` as message lists).
    """
    pos = ", ".join(f"'{s}'" for s in POSITIVE_STAGES)
    neg = ", ".join(f"'{s}'" for s in NEGATIVE_STAGES)
    return f"""with versions as (
    select dataset_name, version from curated.cur_datasets where {_version_filter(dataset_name, version)}
),
rows as (
    select r.*, t.prompt_id, {ASSISTANT_SQL} as assistant_text
    from curated.cur_dataset_rows r
    join versions v using (dataset_name, version)
    join staging.stg_traces t using (trace_id)
),
positives as (
    select *, row_number() over (partition by prompt_id order by rank, trace_id) as pair_index
    from rows where stage in ({pos})
),
negatives as (
    select *, row_number() over (partition by prompt_id order by rank, trace_id) as pair_index
    from rows where stage in ({neg})
)
select
    c.dataset_name, c.version as dataset_version, c.prompt_id, c.pair_index,
    c.trace_id as chosen_trace_id, r.trace_id as rejected_trace_id,
    [{{'role': 'user', 'content': p.problem_text}}] as prompt,
    [{{'role': 'assistant', 'content': c.assistant_text}}] as chosen,
    [{{'role': 'assistant', 'content': r.assistant_text}}] as rejected
from positives c
join negatives r on r.prompt_id = c.prompt_id and r.pair_index = c.pair_index
join staging.stg_prompts p on p.prompt_id = c.prompt_id
order by c.prompt_id, c.pair_index"""


def create_views_sql(dataset_name: str, *, with_pairs: bool) -> list[str]:
    """Statements that (re-)create the dataset's views, each with its grain in a comment."""
    sft = sft_view_name(dataset_name)
    statements = [
        f"create or replace view {sft} as\n{sft_rows_sql(dataset_name)}",
        (f"comment on view {sft} is 'one row per trace of the latest published version of dataset "
         f"{dataset_name}, chat format (messages, reasoning inside <think>)'"),
    ]
    if with_pairs:
        redi = redi_view_name(dataset_name)
        statements += [
            f"create or replace view {redi} as\n{redi_pairs_sql(dataset_name)}",
            (f"comment on view {redi} is 'one row per (correct, incorrect) trace pair of a prompt in the latest "
             f"published version of dataset {dataset_name}'"),
        ]
    return statements
