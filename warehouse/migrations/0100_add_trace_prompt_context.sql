-- The context a trace was sampled from, so every model is scored on it (issue #25).
-- prompt_context_text: the exact text the generating model's tokenizer was given before the completion
--   (chat: its chat template over the messages, generation prompt included, tokenized without added
--   special tokens; raw: the prompt, tokenized with them). Null for imported traces, and for chat
--   prompts rendered by a remote endpoint (the messages are then the record).
-- prompt_messages_json: chat prompts only: the messages before any template, [{"role", "content"}, ...].
alter table raw.raw_traces add column prompt_context_text varchar;
alter table raw.raw_traces add column prompt_messages_json varchar;
alter table raw.raw_traces add column is_chat_prompt boolean;
-- Which context a scoring pass conditioned on: recorded (the trace's own rendered text) |
-- recorded_messages (its chat messages under the scoring model's template) | problem_template
-- (no recorded context: the problem under the scoring model's template). Null for sampled rows
-- written before this column existed; sampled rows are 'recorded' by construction.
alter table raw.raw_token_logprobs add column context_kind varchar;
