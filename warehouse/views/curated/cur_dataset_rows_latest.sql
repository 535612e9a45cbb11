-- one row per trace of the latest published version of each dataset
create or replace view curated.cur_dataset_rows_latest as
with published as (
    select dataset_name, version from curated.cur_datasets where status = 'published'
),
latest as (
    select dataset_name, max(version) as version from published group by dataset_name
)
select r.dataset_name, r.version, r.trace_id, r.rank, r.stage
from curated.cur_dataset_rows r
join latest l using (dataset_name, version);
