create table raw.raw_prompts (
    prompt_id varchar not null,         -- content hash of the normalised problem text + source
    source varchar not null,            -- dataset name (file stem unless given)
    source_ref varchar,                 -- file:line of the first ingest
    domain varchar not null,            -- math | code
    problem_text varchar not null,
    reference_answer varchar,
    tests_json varchar,                 -- JSON list of test strings (code prompts)
    split varchar not null,             -- train | eval | benchmark | ...
    metadata_json varchar,
    ingested_at timestamp not null,
    run_id varchar not null
);
comment on table raw.raw_prompts is 'one row per distinct prompt (prompt_id); append-only';
