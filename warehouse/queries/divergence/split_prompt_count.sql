-- How many prompts the split $split holds.
select count(*)
from staging.stg_prompts
where split = $split
