-- Which items each stage run rejected and why, per run. raw.raw_rejections stores a rejection once
-- (a re-run rejecting the same row for the same reason adds nothing there), so counting reasons
-- per run from it under-counts re-runs; run reports count them here, where they sum to the run's
-- n_rejected. Written by warehouse.runs.record_rejections together with raw.raw_rejections.
create table meta.run_rejections (
    run_id varchar not null,
    stage varchar not null,
    source_ref varchar not null,
    reason_code varchar not null,
    payload_hash varchar not null,
    primary key (run_id, stage, source_ref, reason_code, payload_hash)
);
comment on table meta.run_rejections is 'one row per (run_id, stage, source_ref, reason_code, payload_hash): the rejections of each run';
