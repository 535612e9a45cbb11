-- The funnel of one run: rows in, out and rejected per child stage run (or the run itself), with reason codes.
with children as (
    select run_id, stage, n_in, n_out, n_rejected, started_at
    from meta.runs
    where parent_run_id = $run_id
       or (run_id = $run_id and not exists (select 1 from meta.runs where parent_run_id = $run_id))
),
reasons as (
    select run_id, string_agg(reason_code || '=' || n, ', ' order by n desc, reason_code) as reasons
    from (
        select run_id, reason_code, count(*) as n
        from raw.raw_rejections
        where run_id in (select run_id from children)
        group by run_id, reason_code
    )
    group by run_id
)
select c.stage, c.run_id, c.n_in, c.n_out, c.n_rejected, coalesce(r.reasons, '') as reasons
from children c left join reasons r using (run_id)
order by c.started_at;
