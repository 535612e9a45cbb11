-- The trace viewer of one curate run: the rows of the dataset version it published (selected)
-- and every trace a stage of the run rejected (reason codes of raw.raw_rejections).
-- Lineage = the run and its child runs (meta.runs.parent_run_id); $dataset_name / $version: the
-- version the run published (its stats name it; a re-run with identical content re-uses a version).
with lineage as (
    select run_id from meta.runs where run_id = $run_id or parent_run_id = $run_id
),
selected as (
    select r.trace_id, true as selected, 'selected: ' || r.stage || ' #' || cast(r.rank as varchar) as reason, r.rank
    from curated.cur_dataset_rows r
    where r.dataset_name = $dataset_name and r.version = $version
),
rejected as (
    select j.source_ref as trace_id, false as selected,
           string_agg(distinct j.stage || ': ' || j.reason_code, '; ' order by j.stage || ': ' || j.reason_code) as reason,
           null::integer as rank
    from raw.raw_rejections j
    join staging.stg_traces t on t.trace_id = j.source_ref
    where j.run_id in (select run_id from lineage)
      and j.source_ref not in (select trace_id from selected)
    group by j.source_ref
)
select * from selected
union all
select * from rejected
order by selected desc, rank nulls last, trace_id;
