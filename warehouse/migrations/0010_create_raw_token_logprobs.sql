-- Per-token log-probs of a trace's completion under one model: sampled at generation time
-- (logprob_source = 'sampled') or from a teacher-forced scoring pass ('teacher_forced').
create table raw.raw_token_logprobs (
    trace_id varchar not null,
    model_id varchar not null,                 -- the model that produced these log-probs (may differ from the trace's writer)
    logprob_source varchar not null default 'teacher_forced',  -- sampled | teacher_forced
    n_tokens integer,
    token_ids integer[],                       -- null when the endpoint returns token strings only
    tokens varchar[],                          -- token strings, kept only when token_ids are unknown
    logprobs float[] not null,                 -- raw log P(token | context), temperature 1, per completion token
    char_starts integer[] not null,            -- char offset of each token in completion_text
    top_k integer not null default 0,          -- alternatives recorded per position (0 = none)
    top_token_ids integer[][],
    top_tokens varchar[][],
    top_logprobs float[][],
    created_at timestamp not null default current_timestamp,
    run_id varchar
);
comment on table raw.raw_token_logprobs is 'one row per (trace_id, model_id): the completion tokens of a trace scored by one model; append-only';
