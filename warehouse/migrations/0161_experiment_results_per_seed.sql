-- The selection ablation stores one row per experiment, arm and seed (the seed reaches selection,
-- training and evaluation sampling), and its statistics per arm. The earlier per-policy table
-- (one seed, no intervals) is kept as meta.experiment_results_v1.
alter table meta.experiment_results rename to experiment_results_v1;

create table meta.experiment_results (
    experiment_id varchar not null,     -- hash(arms, budget, seeds, student, recipe, eval config, eval set)
    arm varchar not null,               -- the arm's name (a policy name, or policy:variant)
    policy varchar not null,            -- the selection policy the arm ran; base = the untrained student
    seed bigint not null,               -- drove selection, training data order/init and eval sampling
    budget bigint not null,
    budget_unit varchar not null,       -- traces | tokens
    dataset_name varchar,               -- null for the base arm
    dataset_version integer,
    n_rows bigint,                      -- traces in the arm's dataset
    n_tokens bigint,                    -- completion tokens in the arm's dataset (student tokenizer where the source had none)
    mean_trace_tokens double,
    training_run_id varchar,
    n_steps bigint,                     -- optimiser steps the training run made
    is_training_truncated boolean,      -- the training run stopped before its step bound (time cap)
    eval_id varchar not null,
    n_problems bigint not null,
    pass_at_1 double not null,          -- greedy, over every problem of the eval set
    pass_at_k double not null,
    k integer not null,
    mean_completion_tokens double,
    truncation_rate double,
    run_id varchar not null,
    created_at timestamp not null,
    primary key (experiment_id, arm, seed)
);
comment on table meta.experiment_results is 'one row per experiment, arm and seed (experiment_id, arm, seed); arm base holds the untrained student';

create table meta.experiment_arm_stats (
    experiment_id varchar not null,
    arm varchar not null,
    n_seeds bigint not null,
    n_problems bigint not null,
    pass_at_1 double not null,          -- mean over problems x seeds
    pass_at_1_low double not null,      -- bootstrap interval (problems and seeds resampled)
    pass_at_1_high double not null,
    confidence double not null,
    reference_arm varchar not null,     -- random unless the experiment says otherwise
    diff_vs_reference double,           -- paired (same problem and seed) mean difference; null for the reference
    diff_low double,
    diff_high double,
    verdict varchar,                    -- better | worse | no detectable difference; null for the reference
    run_id varchar not null,
    created_at timestamp not null,
    primary key (experiment_id, arm),
    check (verdict is null or verdict in ('better', 'worse', 'no detectable difference'))
);
comment on table meta.experiment_arm_stats is 'one row per experiment and arm (experiment_id, arm): interval and paired verdict against the reference arm';
