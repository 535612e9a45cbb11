create table raw.raw_contamination (
    prompt_id varchar not null,
    benchmark_name varchar not null,    -- name from the benchmark spec (file stem unless given)
    benchmark_hash varchar not null,    -- content hash of the benchmark items checked against
    is_contaminated boolean not null,
    benchmark_item_id varchar,          -- best-matching benchmark item (contaminated only)
    match_kind varchar,                 -- ngram | formula
    n_matched_ngrams integer,
    overlap_ratio double,               -- matched n-grams / the prompt's n-grams (formula: 1.0)
    matched_ngram varchar,              -- one shared n-gram (or the shared formula), as evidence
    ngram_size integer,
    config_fingerprint varchar not null,
    checked_at timestamp not null,
    run_id varchar not null
);
comment on table raw.raw_contamination is 'one row per prompt checked against one benchmark version under a decontamination config; append-only';
