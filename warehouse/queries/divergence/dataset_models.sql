-- The models that wrote the traces of dataset version ($dataset_name, $version), one row per model.
select distinct t.model_id
from curated.cur_dataset_rows r
join staging.stg_traces t using (trace_id)
where r.dataset_name = $dataset_name and r.version = $version
