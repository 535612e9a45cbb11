-- one row per item_kind, item_id and method: the latest cluster assignment (renamed/cast only)
create or replace view staging.stg_dedup as
with source as (
    select * from raw.raw_dedup
),
latest as (
    select * from source
    qualify row_number() over (partition by item_kind, item_id, method order by decided_at desc, run_id desc) = 1
)
select
    item_kind, item_id, method, cluster_id, is_representative,
    not is_representative as is_duplicate,
    similarity, text_hash, group_id, config_fingerprint, decided_at, run_id
from latest;
