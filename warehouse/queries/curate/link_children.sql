-- Record $run_id as the parent of the stage runs $child_ids.
update meta.runs
set parent_run_id = $run_id
where run_id in (select unnest($child_ids::varchar[]))
