-- The stage runs of one run's lineage (its child runs, or the run itself when it has none), in
-- the order they ran, with their counts and stats (the report splits dedup by unit from them).
select run_id, flow_name, stage, status, n_in, n_out, n_rejected, stats_json, config_json, started_at
from meta.runs
where parent_run_id = $run_id
   or (run_id = $run_id and not exists (select 1 from meta.runs where parent_run_id = $run_id))
order by started_at;
