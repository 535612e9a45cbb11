-- Wall seconds of the last completed curate run of recipe $recipe (the CLI's ETA).
select epoch(finished_at - started_at) as seconds
from meta.runs
where flow_name = 'curate' and status = 'completed'
  and json_extract_string(stats_json, '$.recipe') = $recipe
order by finished_at desc
limit 1
