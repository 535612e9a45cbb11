-- Layers: raw (append-only stage output), staging (stg_* views), curated (cur_*), meta (runs, migrations, data quality).
create schema if not exists raw;
create schema if not exists staging;
create schema if not exists curated;
create schema if not exists meta;
