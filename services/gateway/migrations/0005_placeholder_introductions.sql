-- A placeholder stands for one value in a conversation. The row that introduced it (its
-- first spelling) is marked, and a unique index over the marked rows makes two writers
-- that introduce the same placeholder at once collide: under READ COMMITTED neither sees
-- the other's row, so without it a turn kept out of the transcript (which takes no turn
-- index) or a stream's claim could give a taken placeholder to a second value. Other
-- spellings of a value reuse its placeholder unmarked.
ALTER TABLE conversation_pseudonyms ADD COLUMN introduces boolean NOT NULL DEFAULT false;

-- Existing rows: the earliest row of each placeholder introduced it.
UPDATE conversation_pseudonyms p SET introduces = true
WHERE NOT EXISTS (
    SELECT 1 FROM conversation_pseudonyms q
    WHERE q.tenant_id = p.tenant_id AND q.conversation_id = p.conversation_id
      AND q.placeholder = p.placeholder
      AND (q.created_at, q.token) < (p.created_at, p.token));

CREATE UNIQUE INDEX conversation_pseudonyms_introduced
    ON conversation_pseudonyms (tenant_id, conversation_id, placeholder) WHERE introduces;
