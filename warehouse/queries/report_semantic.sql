-- What the semantic dedup step removed: up to 20 examples per reason (dup_semantic, contaminated_embedding),
-- each with the kept item or benchmark item, the cosine and both texts in its detail.
with removed as (
    select reason_code, source_ref, detail, rejected_at
    from raw.raw_rejections
    where stage = 'dedup' and reason_code in ('dup_semantic', 'contaminated_embedding')
),
ranked as (
    select *, row_number() over (partition by reason_code order by rejected_at desc, source_ref) as k
    from removed
)
select reason_code, source_ref as item_id, detail
from ranked
where k <= 20
order by reason_code, item_id;
