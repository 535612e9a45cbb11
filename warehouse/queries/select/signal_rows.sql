-- Rows each eligibility stage wrote (0: the stage has not run, its criterion is not applied); one row.
select
    (select count(*) from staging.stg_verifications) as verdict_status,
    (select count(*) from staging.stg_dedup) as is_representative,
    (select count(*) from staging.stg_contamination) as is_contaminated,
    (select count(*) from staging.stg_quality_flags where preset = $quality_preset) as passes_quality
