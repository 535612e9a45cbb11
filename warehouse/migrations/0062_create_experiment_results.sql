-- The selection-ablation experiment: one dataset + fine-tune + evaluation per selection policy.
create table meta.experiment_results (
    experiment_id varchar not null,     -- hash(policies, budget, seed, base model, recipe, eval config, candidate pool)
    policy varchar not null,            -- provenance | random | longest | ... | base (the student before fine-tuning)
    domain varchar not null,            -- all | math | code
    budget bigint not null,             -- traces per dataset
    seed bigint not null,
    dataset_name varchar,               -- null for the base row
    dataset_version integer,
    n_rows bigint,                      -- traces in the dataset
    mean_trace_tokens double,           -- mean completion tokens of the selected traces (length next to count)
    training_run_id varchar,
    eval_id varchar not null,
    pass_at_1 double not null,
    pass_at_k double not null,
    k integer not null,
    delta_pass_at_1 double,             -- pass_at_1 minus the base student's, same eval set and config
    mean_completion_tokens double,
    truncation_rate double,
    run_id varchar not null,
    created_at timestamp not null,
    primary key (experiment_id, policy, domain)
);
comment on table meta.experiment_results is 'one row per experiment, policy and domain (experiment_id, policy, domain); policy base holds the untrained student';
