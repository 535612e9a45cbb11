-- Rejected items per run of the lineage, unit and reason: each item counted once, under its first
-- reason (dup_exact before dup_near before the rest, alphabetically); dedup's contamination
-- rejections (n-gram and embedding) apart (the decontamination row). Keys come from meta.run_rejections, or from
-- raw.raw_rejections for runs recorded before that table existed.
with lineage as (
    select run_id from meta.runs
    where parent_run_id = $run_id
       or (run_id = $run_id and not exists (select 1 from meta.runs where parent_run_id = $run_id))
),
keys as (
    select k.run_id, k.stage, k.source_ref, k.reason_code
    from meta.run_rejections k where k.run_id in (select run_id from lineage)
    union
    select r.run_id, r.stage, r.source_ref, r.reason_code
    from raw.raw_rejections r
    where r.run_id in (select run_id from lineage)
      and r.run_id not in (select distinct run_id from meta.run_rejections)
),
items as (
    select run_id, source_ref, stage = 'dedup' and reason_code in ('contaminated', 'contaminated_embedding') as is_contamination,
           arg_min(reason_code, (case reason_code when 'dup_exact' then '0' when 'dup_near' then '1' else '2' end) || reason_code)
               as reason_code
    from keys
    group by run_id, source_ref, stage = 'dedup' and reason_code in ('contaminated', 'contaminated_embedding')
)
select
    i.run_id, i.is_contamination,
    case when i.source_ref in (select trace_id from raw.raw_traces) then 'traces'
         when i.source_ref in (select prompt_id from raw.raw_prompts) then 'prompts'
         else 'rows' end as unit,
    i.reason_code, count(*) as n
from items i
group by all
order by i.run_id, n desc, i.reason_code;
