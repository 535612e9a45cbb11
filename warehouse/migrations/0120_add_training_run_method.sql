-- Training methods ([Training methods]): a method runs one or more stages (sft, then redi or opd;
-- or the temperature schedule's low_temp then high_temp); each stage is one training run whose
-- parent is the stage it continued from.
alter table meta.training_runs add column method varchar default 'sft';          -- sft | sft+redi | sft+opd | schedule
alter table meta.training_runs add column stage varchar default 'sft';           -- sft | redi | opd | low_temp | high_temp
alter table meta.training_runs add column parent_training_run_id varchar;        -- the run whose checkpoint this stage started from; null for the first stage
