-- Generation bookkeeping: which backend wrote a trace, in which shard; and the committed shards.
alter table raw.raw_traces add column backend varchar;
alter table raw.raw_traces add column shard_id varchar;

create table raw.raw_generation_shards (
    shard_id varchar not null,                 -- hash of the request keys it holds
    run_id varchar not null,
    model_id varchar not null,
    backend varchar not null,
    n_requests integer not null,
    n_generated integer not null,
    n_failed integer not null,
    n_prompt_tokens bigint not null,
    n_completion_tokens bigint not null,
    cost_usd double,
    wall_s double not null,
    committed_at timestamp not null
);
comment on table raw.raw_generation_shards is 'one row per committed generation shard (shard_id, run_id); written last, in the transaction of its traces';
