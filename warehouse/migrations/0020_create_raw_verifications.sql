create table raw.raw_verifications (
    trace_id varchar not null,
    prompt_id varchar,
    verifier varchar not null,          -- math_verify | code_sandbox | majority_vote | none
    verifier_version varchar not null,  -- verifier revision + library version + config fingerprint
    input_hash varchar not null,        -- md5 of what was judged (reference/tests + completion, or the vote group)
    verdict_status varchar not null,    -- correct | incorrect | unverifiable | timeout | error
    verdict_reason varchar not null,    -- snake_case: answer_matches, answer_differs, tests_failed, deadline_exceeded, ...
    score double,                       -- [0, 1]: 1 correct; code: fraction of tests passed; vote: agreement of the answer
    extracted_answer varchar,           -- math: the final answer as extracted; code: the program's sha256 prefix
    detail varchar,                     -- human-readable: stderr excerpt, sandbox protections in force, vote counts
    n_tests integer,                    -- code: tests run
    n_tests_passed integer,             -- code: tests passed
    elapsed_ms double,
    verified_at timestamp not null,
    run_id varchar not null
);
comment on table raw.raw_verifications is 'one row per trace, verifier, verifier_version and input_hash (a verdict); append-only';
