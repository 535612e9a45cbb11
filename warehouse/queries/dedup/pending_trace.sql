-- How many traces have no dedup decision under the config $fingerprint.
select count(*)
from staging.stg_traces s
where not exists (
    select 1 from raw.raw_dedup d
    where d.item_kind = 'trace' and d.item_id = s.trace_id and d.config_fingerprint = $fingerprint
)
