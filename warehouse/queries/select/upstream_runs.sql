-- The latest completed run of each stage other than select: a dataset's source runs, one row per stage.
select run_id
from meta.runs
where status = 'completed' and stage <> 'select'
qualify row_number() over (partition by stage order by started_at desc) = 1
order by stage
