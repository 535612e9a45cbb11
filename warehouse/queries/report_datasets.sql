-- Published dataset versions: one row each, newest first, for the selection comparison.
select
    d.dataset_name, d.version, d.policy, d.n_rows, d.n_tokens,
    d.n_tokens / nullif(d.n_rows, 0) as mean_tokens,
    d.created_at
from curated.cur_datasets d
where d.status = 'published'
order by d.created_at desc;
