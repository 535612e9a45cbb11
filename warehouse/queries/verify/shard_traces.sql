-- the rows a shard needs, for the given trace ids
-- params: those of routed_traces.sql, $trace_ids
with routed as (
    {routed_traces}
)
select
    r.trace_id, r.prompt_id, r.verifier, r.verifier_version, r.input_hash, r.route_reason,
    r.completion_text, r.is_truncated, r.reference_answer, r.tests_json
from routed r
where r.trace_id in (select unnest($trace_ids))
order by r.prompt_id, r.trace_id
