-- The 20 most recent curate runs: recipe, status, start, minutes, the dataset versions they
-- published and how many stage runs they had (`potstill status`).
select
    run_id,
    json_extract_string(stats_json, '$.recipe') as recipe,
    status,
    strftime(started_at, '%Y-%m-%d %H:%M') as started,
    round(epoch(finished_at - started_at) / 60, 1) as minutes,
    (select string_agg(json_extract_string(s, '$.dataset'), ', ')
       from unnest(from_json(json_extract(stats_json, '$.stages'), '["JSON"]')) as t(s)
       where json_extract_string(s, '$.stage') = 'publish') as published,
    (select count(*) from meta.runs as c where c.parent_run_id = r.run_id) as stage_runs
from meta.runs as r
where flow_name = 'curate'
order by started_at desc
limit 20
