-- Mean completion length of the traces in dataset version ($dataset_name, $version).
select avg(t.n_completion_tokens)
from curated.cur_dataset_rows r
join staging.stg_traces t using (trace_id)
where r.dataset_name = $dataset_name and r.version = $version
