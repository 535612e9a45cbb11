-- Every version of dataset $name with its status, in order.
select version, status
from curated.cur_datasets
where dataset_name = $name
order by version
