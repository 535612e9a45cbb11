-- Prompts the n-gram method already flags as contaminated by one benchmark.
select prompt_id
from staging.stg_contamination
where benchmark_name = $benchmark_name and method = 'ngram' and is_contaminated
