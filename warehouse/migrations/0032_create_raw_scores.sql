create table raw.raw_scores (
    trace_id varchar not null,
    metric varchar not null,            -- completion_tokens, is_truncated, has_final_answer, repeated_4gram_fraction, ...
    score double,                       -- booleans as 0/1; null when undefined (e.g. a ratio to a zero median)
    scorer varchar not null,            -- potstill.quality
    scorer_version varchar not null,    -- scorer revision + config fingerprint
    basis_hash varchar not null,        -- '' for per-trace metrics; group metrics: hash of the prompt's trace set
    scored_at timestamp not null,
    run_id varchar not null
);
comment on table raw.raw_scores is 'one row per trace, metric, scorer version and basis (long format); append-only';
