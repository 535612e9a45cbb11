create table meta.dq_results (
    validation_id varchar not null,     -- one contract run over one table's rows
    expectation_index integer not null, -- position in the suite (SQL checks follow the suite's expectations)
    suite_name varchar not null,
    table_name varchar not null,
    checked_run_id varchar,             -- the stage run whose rows were checked (null: all rows / a selection)
    checker_run_id varchar,             -- the run that ran the check (e.g. the publish run)
    expectation_type varchar not null,  -- great-expectations type, or sql_referential_integrity
    column_names varchar,               -- comma-separated columns the expectation reads
    kwargs_json varchar,
    severity varchar not null,          -- critical (blocks publishing) | warning | info
    is_blocking boolean not null,
    success boolean not null,
    n_rows bigint not null,
    n_unexpected bigint,
    unexpected_examples_json varchar,   -- up to 5 offending rows (key columns and the value)
    error_message varchar,              -- the expectation could not be evaluated
    checked_at timestamp not null,
    primary key (validation_id, expectation_index)
);
comment on table meta.dq_results is 'one row per expectation per contract validation (validation_id, expectation_index)';
