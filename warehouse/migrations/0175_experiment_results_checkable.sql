-- Every row of the selection ablation carries what a reviewer checks in SQL alone: the step bound the
-- arm was trained to (n_steps = planned_steps on every trained row; equal rows and steps across the arms of
-- one experiment and seed), and its arm's statistics over all the arm's seeds, repeated on each seed row
-- (the same values as meta.experiment_arm_stats): the 95% interval of pass@1, the paired difference
-- against the reference arm with its interval, and the verdict.
alter table meta.experiment_results add column planned_steps bigint;      -- the experiment's step bound per arm; null for base
alter table meta.experiment_results add column truncation_reason varchar; -- why training stopped early (null: it did not)
alter table meta.experiment_results add column reference_arm varchar;     -- the arm differences are taken against (random)
alter table meta.experiment_results add column pass_at_1_low double;      -- 95% bootstrap interval of the arm's pass@1 (problems x seeds)
alter table meta.experiment_results add column pass_at_1_high double;
alter table meta.experiment_results add column diff_vs_reference double;  -- paired mean difference against reference_arm; null for it
alter table meta.experiment_results add column diff_low double;
alter table meta.experiment_results add column diff_high double;
alter table meta.experiment_results add column verdict varchar;           -- better | worse | no detectable difference; null for the reference
