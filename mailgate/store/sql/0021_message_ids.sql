-- A Message-ID threads later replies by header, even under a rewritten subject: every one mailgate
-- sends (an outbox row with a ticket) and every customer's mail it stores (a message 'in') is
-- indexed in its INSERT's own statement (a trigger runs inside it), instead of a second statement
-- per mail. The first ticket to hold an ID keeps it.
CREATE TRIGGER outbox_message_id AFTER INSERT ON outbox
WHEN NEW.ticket_id IS NOT NULL
BEGIN
    INSERT INTO message_ids (message_id, ticket_id, outbound) VALUES (NEW.message_id, NEW.ticket_id, 1)
    ON CONFLICT DO NOTHING;
END;

CREATE TRIGGER inbound_message_id AFTER INSERT ON messages
WHEN NEW.direction = 'in'
BEGIN
    INSERT INTO message_ids (message_id, ticket_id, outbound) VALUES (NEW.message_id, NEW.ticket_id, 0)
    ON CONFLICT DO NOTHING;
END;
