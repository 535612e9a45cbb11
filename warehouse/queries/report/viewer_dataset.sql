-- The trace viewer of one dataset version: one row per row of curated.cur_dataset_rows
-- (every row selected, `reason` = its selection stage and rank).
select
    r.trace_id,
    true as selected,
    'selected: ' || r.stage || ' #' || cast(r.rank as varchar) as reason,
    r.rank
from curated.cur_dataset_rows r
where r.dataset_name = $dataset_name and r.version = $version
order by r.rank, r.trace_id;
