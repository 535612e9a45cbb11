-- one row per trace of a dataset version (any status), with the trace facts the contracts check
create or replace view curated.cur_dataset_rows_detail as
with rows as (
    select * from curated.cur_dataset_rows
),
versions as (
    select dataset_name, version, status from curated.cur_datasets
),
traces as (
    select trace_id, prompt_id, model_id, n_completion_tokens, length(completion_text) as n_completion_chars
    from staging.stg_traces
)
select
    r.dataset_name, r.version, v.status as dataset_status, r.trace_id, r.rank, r.stage,
    t.prompt_id, t.model_id, t.n_completion_tokens, t.n_completion_chars
from rows r
join versions v using (dataset_name, version)
left join traces t using (trace_id);
