create table raw.raw_quality_flags (
    trace_id varchar not null,
    preset varchar not null,            -- filter preset name: format | default | strict | ...
    filter_fingerprint varchar not null,
    basis_hash varchar not null,        -- hash of the filter config and the trace's scores it judged
    is_flagged boolean not null,
    reason_codes varchar[] not null,    -- truncated, no_reasoning, no_final_answer, repetitive, overthinking, language_mixing
    detail varchar,                     -- metric = value <op> threshold, per reason
    flagged_at timestamp not null,
    run_id varchar not null
);
comment on table raw.raw_quality_flags is 'one row per trace, filter preset and scores judged (flagged or not); append-only';
