-- Agent mail: when a snoozed ticket wakes (its timer row is in timers, kind 'snooze.wake').

ALTER TABLE tickets ADD COLUMN snoozed_until TEXT;
-- Agents' mails and internal notes are messages too: direction 'agent' (an agent's mail as received,
-- never shown to the customer) and 'note' (an internal note); see mailgate/agent_mail.py.
CREATE INDEX messages_direction ON messages(ticket_id, direction);
