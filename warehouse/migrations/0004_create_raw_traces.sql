create table raw.raw_traces (
    trace_id varchar not null,          -- generated: request key hash; imported: hash(prompt_id, model_id, completion)
    prompt_id varchar not null,
    model_id varchar not null,          -- model name (+ @revision or weights hash)
    origin varchar not null,            -- generated | imported
    sample_index integer not null,
    completion_text varchar not null,
    reasoning_text varchar,             -- text inside <think>...</think>
    answer_text varchar,                -- text after </think>
    n_prompt_tokens integer,
    n_completion_tokens integer,
    finish_reason varchar,              -- stop | length | imported | error
    is_truncated boolean not null,
    temperature double,
    top_p double,
    max_tokens integer,
    seed bigint,
    sampling_json varchar,              -- every sampling parameter, as JSON
    prompt_template_hash varchar,
    request_key varchar,                -- resume key (generated traces)
    latency_ms double,
    cost_usd double,
    source_ref varchar,                 -- file:line for imported traces
    created_at timestamp not null,
    run_id varchar not null
);
comment on table raw.raw_traces is 'one row per trace (trace_id); append-only';
