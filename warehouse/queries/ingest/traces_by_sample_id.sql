-- the latest imported trace for each source sample id asked for (DASD-style sample_uuid), to join
-- a separately released log-prob file to its traces
-- params: $ids (the sample ids of one shard), $source (dataset name, or null for any)
with traces as (
    select * from raw.raw_traces
    where source_sample_id in (select unnest($ids::varchar[]))
    qualify row_number() over (partition by trace_id order by created_at desc, run_id desc) = 1
),
prompts as (
    select prompt_id, source from raw.raw_prompts
)
select t.source_sample_id, t.trace_id, t.model_id, t.completion_text
from traces t
left join prompts p using (prompt_id)
where $source is null or p.source = $source
order by t.source_sample_id, t.trace_id
