-- What the semantic dedup step of one run's lineage removed: up to 20 examples per reason
-- (dup_semantic, contaminated_embedding), each with the kept item or benchmark item, the cosine
-- and both texts in its detail.
with lineage as (
    select run_id from meta.runs where parent_run_id = $run_id or run_id = $run_id
),
removed as (
    select r.reason_code, r.source_ref, r.detail, r.rejected_at
    from raw.raw_rejections as r
    join lineage using (run_id)
    where r.stage = 'dedup' and r.reason_code in ('dup_semantic', 'contaminated_embedding')
),
ranked as (
    select *, row_number() over (partition by reason_code order by rejected_at desc, source_ref) as k
    from removed
)
select reason_code, source_ref as item_id, detail
from ranked
where k <= 20
order by reason_code, item_id;
