-- How many prompts have no dedup decision under the config $fingerprint.
select count(*)
from staging.stg_prompts s
where not exists (
    select 1 from raw.raw_dedup d
    where d.item_kind = 'prompt' and d.item_id = s.prompt_id and d.config_fingerprint = $fingerprint
)
