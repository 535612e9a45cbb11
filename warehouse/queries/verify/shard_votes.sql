-- every trace of the given prompts that are decided by majority vote
-- params: those of routed_traces.sql, $prompt_ids
with routed as (
    {routed_traces}
)
select r.trace_id, r.prompt_id, r.verifier_version, r.completion_text, r.is_truncated
from routed r
where r.verifier = 'majority_vote' and r.prompt_id in (select unnest($prompt_ids))
order by r.prompt_id, r.trace_id
