-- Prompts not yet checked against the benchmark ($benchmark_name, $benchmark_hash) under the config $fingerprint.
select prompt_id
from staging.stg_prompts p
where not exists (
    select 1 from raw.raw_contamination c
    where c.prompt_id = p.prompt_id and c.benchmark_name = $benchmark_name
        and c.benchmark_hash = $benchmark_hash and c.config_fingerprint = $fingerprint
)
order by prompt_id
