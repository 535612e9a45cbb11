-- The warehouse's tables (not views) in the raw, curated and meta layers, one row each.
select table_schema || '.' || table_name as name
from information_schema.tables
where table_type = 'BASE TABLE' and table_schema in ('raw', 'curated', 'meta')
order by 1
