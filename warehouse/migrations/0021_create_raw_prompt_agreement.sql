create table raw.raw_prompt_agreement (
    prompt_id varchar not null,
    verifier_version varchar not null,
    input_hash varchar not null,        -- md5 of the vote group (trace ids and completions)
    n_traces bigint not null,
    n_answered bigint not null,         -- traces with a parseable final answer
    n_clusters bigint not null,         -- distinct answers up to math-verify equivalence
    majority_answer varchar,
    majority_count bigint not null,
    agreement_rate double,              -- majority_count / n_answered
    has_majority boolean not null,      -- a clear majority under the vote config
    is_complete boolean not null,       -- false when the vote itself timed out or failed
    computed_at timestamp not null,
    run_id varchar not null
);
comment on table raw.raw_prompt_agreement is 'one row per prompt, vote version and vote group (self-consistency over its traces); append-only';
