-- The lake snapshot a published dataset version was committed in (`potstill sql --at NAME@VERSION`).
select snapshot_id
from curated.cur_dataset_snapshots
where dataset_name = $dataset_name and version = $version
