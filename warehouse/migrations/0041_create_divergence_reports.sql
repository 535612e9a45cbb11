-- Reports of the divergence stage: provenance analysis of a distilled model, teacher comparison,
-- and offline on-policy distillation (OPD) exports with their teacher-consistency record.

create table raw.raw_distill_provenance (
    analysis_id varchar not null,       -- hash of (models, alpha, beta, n_bins, the traces analysed)
    distilled_model_id varchar not null,
    teacher_model_id varchar not null,
    student_model_id varchar not null,  -- the original student, before distillation
    answer_status varchar not null,     -- correct | incorrect | unknown (no decisive verdict)
    position_bin integer not null,      -- 0 .. n_bins-1: sentence_index / n_sentences of its trace
    n_bins integer not null,
    provenance_class varchar not null,  -- shared | teacher | student | boosted
    n_sentences bigint not null,
    share double not null,              -- n_sentences / all sentences of (answer_status, position_bin)
    alpha double not null,
    beta double not null,
    n_traces integer not null,          -- distilled-model traces analysed in this answer_status
    created_at timestamp not null,
    run_id varchar not null
);
comment on table raw.raw_distill_provenance is 'one row per (analysis_id, answer_status, position_bin, provenance_class); append-only';

create table raw.raw_teacher_comparison (
    comparison_id varchar not null,     -- hash of (teachers, reference model, prompts compared)
    teacher_model_id varchar not null,
    reference_model_id varchar not null,
    n_prompts integer not null,         -- prompts every compared teacher has traces for
    n_traces integer not null,
    n_verified integer not null,        -- traces with a decisive verdict
    pass_rate double,                   -- correct / decisive
    mean_completion_tokens double,
    p50_completion_tokens double,
    p90_completion_tokens double,
    mean_ppl_reference double,          -- mean over traces of exp(-mean token log-prob) under the reference model
    median_ppl_reference double,
    hesitation_per_1k_tokens double,    -- wait, alternatively, check, but, maybe, might, perhaps (docs/methods.md#quality-signals)
    paragraphs_per_1k_tokens double,
    created_at timestamp not null,
    run_id varchar not null
);
comment on table raw.raw_teacher_comparison is 'one row per (comparison_id, teacher_model_id); append-only';

create table raw.raw_opd_exports (
    export_id varchar not null,         -- content hash of the exported rows
    sft_dataset varchar not null,       -- name@version of the SFT data the student was trained on
    sft_teacher_model_id varchar not null,   -- the teacher that wrote the SFT data
    scoring_teacher_model_id varchar not null, -- the teacher that scored the rollouts (must be the same)
    student_model_id varchar not null,  -- the SFT student whose own rollouts are exported
    n_rollouts integer not null,
    n_tokens bigint not null,
    max_tokens integer,                 -- rollouts truncated to this many tokens
    path varchar not null,
    created_at timestamp not null,
    run_id varchar not null
);
comment on table raw.raw_opd_exports is 'one row per OPD export file (export_id); append-only';
