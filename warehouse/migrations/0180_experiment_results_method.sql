-- Training methods as ablation arms: an experiment_results row records the training method its arm
-- ran (sft | sft+redi | sft+opd | schedule) and the optimiser steps of each of its stages. Rows of
-- the selection ablation leave method null (every selection arm is trained with plain SFT).
alter table meta.experiment_results add column method varchar;        -- null: a selection arm (plain sft)
alter table meta.experiment_results add column stage_steps varchar;   -- JSON {stage: optimiser steps}, e.g. {"sft": 240, "redi": 60}
