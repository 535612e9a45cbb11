-- Created here so lineage can reach training runs; written by the finetune flow ([Fine-tuning & evaluation]).
create table meta.training_runs (
    training_run_id varchar not null,
    dataset_name varchar not null,
    dataset_version integer not null,
    base_model varchar not null,
    recipe_fingerprint varchar,
    checkpoint_path varchar,
    n_steps bigint,
    n_train_tokens bigint,
    final_loss double,
    started_at timestamp not null,
    finished_at timestamp,
    status varchar not null,            -- running | completed | failed
    primary key (training_run_id),
    check (status in ('running', 'completed', 'failed'))
);
comment on table meta.training_runs is 'one row per fine-tuning run (training_run_id); updated in place when it finishes';
