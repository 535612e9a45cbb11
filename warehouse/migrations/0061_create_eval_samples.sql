-- Every completion an evaluation generated, with its verdict: the resume unit and the audit trail.
create table meta.eval_samples (
    eval_id varchar not null,
    problem_id varchar not null,
    domain varchar not null,
    mode varchar not null,              -- greedy | sampled
    sample_index integer not null,
    completion_text varchar not null,
    n_completion_tokens integer not null,
    finish_reason varchar not null,     -- stop | length
    is_truncated boolean not null,
    verdict_status varchar not null,    -- correct | incorrect | unverifiable | timeout | error
    score double not null,
    verdict_detail varchar,
    shard_index integer not null,
    run_id varchar not null,
    created_at timestamp not null,
    primary key (eval_id, problem_id, mode, sample_index),
    check (mode in ('greedy', 'sampled')),
    check (verdict_status in ('correct', 'incorrect', 'unverifiable', 'timeout', 'error'))
);
comment on table meta.eval_samples is 'one row per evaluation completion (eval_id, problem_id, mode, sample_index); a shard of problems is committed in one transaction';
