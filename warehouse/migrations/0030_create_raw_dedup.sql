create table raw.raw_dedup (
    item_kind varchar not null,         -- prompt | trace
    item_id varchar not null,           -- prompt_id or trace_id
    method varchar not null,            -- exact (normalised-text hash) | near (MinHash LSH + exact Jaccard, + formula identity for prompts)
    cluster_id varchar not null,        -- the item_id of the cluster's representative
    is_representative boolean not null, -- first ingested, then lowest id, of its cluster
    similarity double,                  -- exact: 1.0 in a cluster; near: best verified Jaccard to a member; null for singletons
    text_hash varchar,                  -- exact: sha256 prefix of the normalised text
    group_id varchar,                   -- traces: the prompt_id duplicates are confined to; null for prompts
    config_fingerprint varchar not null,
    decided_at timestamp not null,
    run_id varchar not null
);
comment on table raw.raw_dedup is 'one row per item, method and cluster assignment under a dedup config; append-only (a re-run appends only changed assignments)';
