create table raw.raw_prompt_stats (
    prompt_id varchar not null,
    model_id varchar not null,
    n_traces integer not null,
    n_verified integer not null,        -- traces with a decisive verdict (correct | incorrect)
    n_correct integer not null,
    pass_rate double,                   -- n_correct / n_verified; null when nothing is decisive
    score_mean double,                  -- mean verify score over the model's traces
    score_std double,
    score_cv double,                    -- score_std / score_mean (DeepDistill)
    difficulty_band varchar not null,   -- unsolved | hard | medium | easy | solved | unknown
    basis_hash varchar not null,        -- hash of the traces and verdicts the stats were computed from
    config_fingerprint varchar not null,
    computed_at timestamp not null,
    run_id varchar not null
);
comment on table raw.raw_prompt_stats is 'one row per prompt, model and verdict set (pass rate, score variation, difficulty band); append-only';
