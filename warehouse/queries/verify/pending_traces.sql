-- traces judged one at a time (reference answer, tests, or no verifier) with no verdict for this version and input
-- params: those of routed_traces.sql
with routed as (
    {routed_traces}
)
select r.trace_id, r.prompt_id, r.verifier, r.verifier_version, r.input_hash
from routed r
where r.verifier <> 'majority_vote'
    and not exists (
        select 1 from raw.raw_verifications v
        where v.trace_id = r.trace_id and v.verifier = r.verifier
            and v.verifier_version = r.verifier_version and v.input_hash = r.input_hash
    )
order by r.verifier, r.prompt_id, r.trace_id
