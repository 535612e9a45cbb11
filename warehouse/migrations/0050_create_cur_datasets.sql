-- Versioned datasets. A version is written as 'draft', checked by the data contracts, then set to
-- 'published' (immutable from then on: its rows and content_hash never change) or 'failed'.
create table curated.cur_datasets (
    dataset_name varchar not null,      -- [a-z0-9][a-z0-9_-]*; views use it with '-' -> '_'
    version integer not null,           -- 1, 2, ... per dataset_name
    policy varchar not null,            -- selection policy that produced the rows (provenance, random, ...)
    params_json varchar,                -- the policy's parameters, as JSON
    config_fingerprint varchar,         -- fingerprint of the recipe/config that produced it
    source_run_ids varchar[],           -- meta.runs ids of the stages whose output it was built from
    n_rows bigint not null,
    n_tokens bigint not null,           -- sum of completion tokens of its traces
    content_hash varchar not null,      -- sha256 over (rank, trace_id, stage, prompt and completion text hashes)
    status varchar not null,            -- draft | published | failed
    created_at timestamp not null,
    published_at timestamp,
    status_reason varchar,              -- why a version failed (the blocking expectation)
    publish_run_id varchar,
    primary key (dataset_name, version),
    check (status in ('draft', 'published', 'failed'))
);
comment on table curated.cur_datasets is 'one row per dataset version (dataset_name, version); a published version never changes';

create table curated.cur_dataset_rows (
    dataset_name varchar not null,
    version integer not null,
    trace_id varchar not null,
    rank integer not null,              -- order within the version (selection order)
    stage varchar not null,             -- selection stage: main | low_temp | high_temp | positive | negative ...
    primary key (dataset_name, version, trace_id)
);
comment on table curated.cur_dataset_rows is 'one row per selected trace of a dataset version; written once with its version';
