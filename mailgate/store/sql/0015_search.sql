-- Full-text search over what was written on tickets: one index row per message (a customer's mail,
-- an agent's reply, a note, a mail we sent), so a hit knows its direction and its snippet is the
-- words of the message that matched. External content: the words are read back from `messages`
-- (no second copy of every body); the triggers below keep the index in the same transaction as
-- the write of the message, its erasure (messages.blank) or its deletion (retention, erase).
--
-- unicode61 with remove_diacritics 2 folds "café" to "cafe" and "Müller" to "muller", and splits
-- Latin, Cyrillic, Greek and Arabic words on spaces and punctuation; scripts written without spaces
-- (Chinese, Japanese, Thai) become one token per run of characters, so only a whole run is found.
--
-- Our own automatic mails (acknowledgements, confirmations: direction 'out', kind 'auto-reply') say
-- the same template words on every ticket and are left out. The condition is on columns no UPDATE
-- changes, and the delete trigger repeats it: an external-content index must be told to delete
-- exactly the rows it was given, with the values it was given.
CREATE VIRTUAL TABLE search_text USING fts5(
    subject, text, from_name, from_address,
    content = 'messages', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);

INSERT INTO search_text (rowid, subject, text, from_name, from_address)
    SELECT id, subject, text, from_name, from_address FROM messages
    WHERE NOT (direction = 'out' AND kind = 'auto-reply');

CREATE TRIGGER search_text_insert AFTER INSERT ON messages
WHEN NOT (new.direction = 'out' AND new.kind = 'auto-reply')
BEGIN
    INSERT INTO search_text (rowid, subject, text, from_name, from_address)
    VALUES (new.id, new.subject, new.text, new.from_name, new.from_address);
END;

CREATE TRIGGER search_text_delete AFTER DELETE ON messages
WHEN NOT (old.direction = 'out' AND old.kind = 'auto-reply')
BEGIN
    INSERT INTO search_text (search_text, rowid, subject, text, from_name, from_address)
    VALUES ('delete', old.id, old.subject, old.text, old.from_name, old.from_address);
END;

CREATE TRIGGER search_text_update AFTER UPDATE OF subject, text, from_name, from_address ON messages
WHEN NOT (old.direction = 'out' AND old.kind = 'auto-reply')
BEGIN
    INSERT INTO search_text (search_text, rowid, subject, text, from_name, from_address)
    VALUES ('delete', old.id, old.subject, old.text, old.from_name, old.from_address);
    INSERT INTO search_text (rowid, subject, text, from_name, from_address)
    VALUES (new.id, new.subject, new.text, new.from_name, new.from_address);
END;

