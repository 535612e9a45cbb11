-- The latest provenance analysis of a distilled model: one row per (answer_status, position_bin,
-- provenance_class) of the most recent analysis_id (shared | teacher | student | boosted by position,
-- correct vs incorrect). Feed it to tasks.divergence.analysis.distilled_provenance_report.
with source as (
    select * from raw.raw_distill_provenance
),
latest as (
    select analysis_id from source order by created_at desc, analysis_id limit 1
)
select s.*
from source s
join latest using (analysis_id)
order by s.answer_status, s.position_bin, s.provenance_class;
