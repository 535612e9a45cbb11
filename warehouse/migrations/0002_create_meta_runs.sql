create table meta.runs (
    run_id varchar not null,
    flow_name varchar not null,
    stage varchar not null,
    config_fingerprint varchar,
    config_json varchar,
    status varchar not null,            -- running | completed | failed
    started_at timestamp not null,
    finished_at timestamp,
    n_in bigint,
    n_out bigint,
    n_rejected bigint,
    stats_json varchar,
    error_message varchar,
    parent_run_id varchar
);
comment on table meta.runs is 'one row per stage run (a Prefect flow or stage invocation); updated in place when it finishes';
