-- The current dedup assignment of every item of one kind, per method.
select item_id, method, cluster_id, is_representative, config_fingerprint
from staging.stg_dedup
where item_kind = $kind
