create table raw.raw_rejections (
    run_id varchar not null,
    stage varchar not null,
    source_ref varchar not null,        -- file:line or an id
    reason_code varchar not null,       -- snake_case: invalid_json, missing_field, empty_problem, ...
    detail varchar,
    payload varchar,                    -- the raw row; truncated above 1 MB, saying so
    payload_hash varchar not null,      -- sha256 of the full raw row (idempotent re-runs)
    rejected_at timestamp not null
);
comment on table raw.raw_rejections is 'one row per rejected input row or item per stage and reason; nothing is dropped silently';
