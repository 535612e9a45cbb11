-- The published version $version (null = latest) of dataset $name, one row at most.
select dataset_name, version, content_hash, n_rows, n_tokens, policy
from curated.cur_datasets
where dataset_name = $name and status = 'published' and ($version is null or version = $version)
order by version desc
limit 1
