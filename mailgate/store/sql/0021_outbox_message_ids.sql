-- Every Message-ID mailgate sends threads a reply by header, even with a rewritten subject: the
-- outbox row indexes its own, in the INSERT's statement (a trigger runs inside it), instead of a
-- second statement per outgoing mail. The first ticket to hold an ID keeps it.
CREATE TRIGGER outbox_message_id AFTER INSERT ON outbox
WHEN NEW.ticket_id IS NOT NULL
BEGIN
    INSERT INTO message_ids (message_id, ticket_id, outbound) VALUES (NEW.message_id, NEW.ticket_id, 1)
    ON CONFLICT DO NOTHING;
END;
