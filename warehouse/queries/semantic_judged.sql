-- Items of one kind already judged by semantic dedup under one config.
select distinct item_id
from raw.raw_dedup
where item_kind = $kind and method = 'semantic' and config_fingerprint = $fingerprint
