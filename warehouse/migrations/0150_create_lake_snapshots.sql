-- DuckLake bookkeeping: the snapshot each published dataset version was committed in (time travel:
-- `potstill sql --at NAME@VERSION`), and the view definitions last created (a lake re-creates its
-- views only when their files changed, so starting a process does not add snapshots).
create table curated.cur_dataset_snapshots (
    dataset_name varchar not null,
    version integer not null,
    snapshot_id bigint not null,        -- the lake snapshot that published the version (null-free: lakes only)
    recorded_at timestamp not null
);
comment on table curated.cur_dataset_snapshots is 'one row per published dataset version in a lake (dataset_name, version): its snapshot id';

create table meta.view_sets (
    fingerprint varchar not null,       -- sha256 over the view files (layer/name and text)
    created_at timestamp not null
);
comment on table meta.view_sets is 'one row per set of view definitions created in the warehouse; the newest is current';
