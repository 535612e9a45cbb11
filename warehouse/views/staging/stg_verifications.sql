-- one row per trace_id and verifier: the latest verdict (renamed/cast only). The fallback
-- verifiers 'none' (no prompt / unsupported domain) and 'majority_vote' (no reference answer) are
-- dropped for a trace once a different verifier judged it later (the prompt arrived, or got a reference).
create or replace view staging.stg_verifications as
with source as (
    select * from raw.raw_verifications
),
latest as (
    select * from source
    qualify row_number() over (partition by trace_id, verifier order by verified_at desc, run_id desc) = 1
),
current_verdicts as (
    select * from latest
    qualify verifier not in ('none', 'majority_vote')
        or verified_at >= max(verified_at) over (partition by trace_id)
)
select
    trace_id, prompt_id, verifier, verifier_version, input_hash, verdict_status, verdict_reason,
    score, extracted_answer, detail, n_tests, n_tests_passed, elapsed_ms,
    verdict_status = 'correct' as is_correct,
    verdict_status in ('correct', 'incorrect') as is_decisive,
    verified_at, run_id
from current_verdicts;
