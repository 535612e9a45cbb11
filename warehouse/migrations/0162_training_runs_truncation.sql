-- A training run bounded by steps that stopped early (the wall-clock safety cap) is marked truncated
-- with its reason; experiments refuse to compare arms whose step counts differ.
alter table meta.training_runs add column max_steps bigint;           -- the step bound of the recipe (null: epoch-bounded)
alter table meta.training_runs add column is_truncated boolean;       -- stopped before max_steps
alter table meta.training_runs add column truncation_reason varchar;  -- e.g. time_cap: 4.0 min reached at step 696 of 800
