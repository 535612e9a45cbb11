-- Who runs a stage: the process id and host recorded at start, so a run whose process died
-- (SIGKILL, OOM, power loss) can be marked `abandoned` instead of staying `running` forever.
alter table meta.runs add column pid integer;
alter table meta.runs add column host varchar;
comment on column meta.runs.pid is 'process id of the run on `host` (status running | completed | failed | abandoned)';
