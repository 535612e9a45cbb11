-- Released log-probs (token ids without token strings or a tokenizer) are kept even when their tokens
-- cannot be placed in the text yet: char_starts is null then, and sentence scoring says so
-- (missing_char_offsets) instead of the log-probs being dropped at import.
alter table raw.raw_token_logprobs alter column char_starts drop not null;
