-- Sentence provenance of each trace in $trace_ids against one student at $beta: offsets into
-- completion_text, p_teacher, p_student and the class (teacher | common | student).
-- $student / $splitter null: the first student and the newest splitter that scored the trace.
with wanted as (
    select unnest($trace_ids::varchar[]) as trace_id
),
sentences as (
    select s.* from curated.cur_provenance_sentences_at(beta := $beta) s join wanted w using (trace_id)
    where ($student is null or s.student_model_id = $student)
      and ($splitter is null or s.splitter = $splitter)
),
chosen as (
    select distinct trace_id, student_model_id, splitter from sentences
    qualify row_number() over (partition by trace_id order by student_model_id, splitter desc) = 1
)
select s.trace_id, s.sentence_index, s.char_start, s.char_end, s.student_model_id, s.splitter,
       s.p_teacher, s.p_student, s.provenance_class
from sentences s join chosen c using (trace_id, student_model_id, splitter)
order by s.trace_id, s.sentence_index;
