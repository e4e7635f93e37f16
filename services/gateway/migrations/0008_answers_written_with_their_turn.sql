-- A keyed call's answer is written by its turn's own statement, so that no turn stands
-- without it: before, the answer followed in a statement of its own, and a replica that
-- died between the two left a claim whose retry, once the claim timed out, was processed
-- again as a second turn. The answer kept with the turn leaves out the turn's message id
-- and index (known only once the statement has run), which are kept beside it. A step
-- after the turn that changes the answer (an in-chat erasure submitted once its turn is
-- stored) still writes the whole answer into `answer`; until then the turn's answer is
-- not settled, and retries wait for the claim to time out before they are given it.
ALTER TABLE message_replays
    ADD COLUMN turn_answer     bytea,
    ADD COLUMN turn_message_id uuid,
    ADD COLUMN turn_index      bigint,
    ADD COLUMN settled         boolean NOT NULL DEFAULT false;
