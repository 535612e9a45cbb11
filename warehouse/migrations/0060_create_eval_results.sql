-- Evaluation metrics of a model on an eval set ([Fine-tuning & evaluation]); written by the evaluate flow.
create table meta.eval_results (
    eval_id varchar not null,           -- hash(model_id, checkpoint weights, eval set content, result-changing eval config)
    model_id varchar not null,          -- the model as given (local path or hub id)
    checkpoint_path varchar,            -- resolved local folder when the model is one
    training_run_id varchar,            -- meta.training_runs id when the checkpoint came from the finetune flow
    eval_set varchar not null,          -- file path or name of the eval set
    eval_set_hash varchar not null,     -- content hash of the problems evaluated (after limit)
    domain varchar not null,            -- all | math | code | ...
    n_problems bigint not null,
    pass_at_1 double not null,          -- greedy
    pass_at_k double not null,          -- sampled, unbiased estimator over n_samples
    k integer not null,
    n_samples integer not null,
    temperature double not null,
    mean_completion_tokens double not null,  -- over greedy completions
    truncation_rate double not null,         -- share of greedy completions that hit max_new_tokens
    eval_config_fingerprint varchar not null,
    eval_config_json varchar not null,
    run_id varchar not null,
    created_at timestamp not null,
    primary key (eval_id, domain)
);
comment on table meta.eval_results is 'one row per evaluation (eval_id) and domain, plus domain = all; written once when the evaluation completes';
