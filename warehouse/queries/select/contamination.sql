-- One row per prompt checked: contaminated by any benchmark, naming them. Needs staging.stg_contamination.
select
    prompt_id,
    bool_or(is_contaminated) as is_contaminated,
    string_agg(distinct benchmark_name, ',') filter (where is_contaminated) as contamination_detail
from staging.stg_contamination
group by prompt_id
