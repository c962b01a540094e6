-- Full-text search on PostgreSQL: the same words found as SQLite's FTS5 index finds them (sql/0015).
--
-- One tsvector per message, in a column of messages kept by a BEFORE trigger, so the words change in
-- the same transaction as the message's write, erasure (messages.blank) or deletion (the row goes).
-- Weighted: subject A, the sender's name and address B, the text C (SQLite's bm25 weights 4, 2, 1).
-- Our own automatic mails (direction 'out', kind 'auto-reply') say the same template words on every
-- ticket and get no vector, as they get no FTS5 row.
--
-- SQLite tokenizes with unicode61 remove_diacritics 2: lower case, "café" is "cafe", a word is a
-- run of letters and digits. PostgreSQL's `unaccent` is an extension a managed server seldom lets a
-- plain role create, and the default parser reads "matti@yritys.test" as one e-mail token and "ZOË"
-- as "zoË" under the C locale. So the words are folded here, by one immutable function that the
-- index and the query both go through (store/search_pg.py asks the server to fold the person's
-- words): letters lose their diacritics, upper case becomes lower case whatever the locale, and
-- punctuation becomes a space. The `simple` configuration then only splits on spaces; no stemming,
-- as unicode61 does none.

-- The text as words separated by spaces: lower case, no diacritics on Latin letters, no punctuation.
-- NFD splits "é" into "e" and U+0301; the marks are dropped only after a Latin letter, as unicode61
-- does (Greek "ά" and Cyrillic "й" keep theirs: NFC puts them back together).
CREATE FUNCTION mailgate_search_words(value text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT btrim(regexp_replace(
        lower(translate(
            normalize(regexp_replace(normalize(value, NFD), '([A-Za-z])[\u0300-\u036f]+', '\1', 'g'), NFC),
            -- Capitals with no decomposition, and Greek and Cyrillic ones: lower() folds only ASCII
            -- under the C locale.
            'ÆÐØÞĐĦĲĿŁŊŒŦƏΆΈΉΊΌΎΏΪΫΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΣΤΥΦΧΨΩАБВГДЕЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯЀЁЂЃЄЅІЇЈЉЊЋЌЍЎЏ',
            'æðøþđħĳŀłŋœŧəάέήίόύώϊϋαβγδεζηθικλμνξοπρστυφχψωабвгдежзийклмнопрстуфхцчшщъыьэюяѐёђѓєѕіїјљњћќѝўџ')),
        -- What unicode61 takes for a separator: ASCII punctuation and symbols, Latin-1's, general
        -- and supplemental punctuation, currency, arrows, maths, box drawing, dingbats, CJK and
        -- full-width punctuation, variation selectors, emoji.
        '[\u0001-\u002f\u003a-\u0040\u005b-\u0060\u007b-\u00a9\u00ab-\u00b1\u00b4\u00b6-\u00b8\u00bb\u00bf\u00d7\u00f7'
        '\u2000-\u206f\u20a0-\u20ff\u2190-\u245f\u2500-\u2775\u2794-\u2bff\u2e00-\u2e7f\u3000-\u3004\u3008-\u3020'
        '\ufe00-\ufe0f\ufe30-\ufe6f\ufeff\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65\ufff0-\uffff'
        '\U0001f000-\U0001faff]+',
        ' ', 'g'))
$$;

-- A message's words, weighted. A lexeme no folded text can hold ('#') stands between the parts while
-- they are joined and is then removed: `||` numbers the right part after the left's last position,
-- and the gap keeps a phrase from running from the subject into the sender, as FTS5's columns do.
-- Only the first 100,000 characters of a text: a tsvector holds at most 1 MB, and a longer one
-- would refuse the message's INSERT (an attached log pasted as text), where FTS5 has no limit.
CREATE FUNCTION mailgate_search_vector(subject text, from_name text, from_address text, body text)
RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ts_delete(
        setweight(to_tsvector('simple', coalesce(mailgate_search_words(subject), '')), 'A')
        || '''#'':1'::tsvector
        || setweight(to_tsvector('simple', coalesce(mailgate_search_words(from_name), '')), 'B')
        || '''#'':1'::tsvector
        || setweight(to_tsvector('simple', coalesce(mailgate_search_words(from_address), '')), 'B')
        || '''#'':1'::tsvector
        || setweight(to_tsvector('simple', coalesce(mailgate_search_words(left(body, 100000)), '')), 'C'),
        '#'::text)
$$;

-- For a snippet: the lexemes of a document as the `simple` configuration reads the original text
-- ("Café", "zoe@cafe.test") whose folded words are among those looked for (or start with a
-- prefix), as one tsquery, so ts_headline marks the words as they were written.
CREATE FUNCTION mailgate_search_marks(doc tsvector, exact text[], prefixes text[]) RETURNS tsquery
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT string_agg('''' || replace(replace(l, '\', '\\'), '''', '''''') || '''', ' | ')::tsquery
    FROM unnest(tsvector_to_array(doc)) AS l
    WHERE EXISTS (
        SELECT 1 FROM regexp_split_to_table(mailgate_search_words(l), ' ') AS w
        WHERE w = ANY (exact) OR EXISTS (SELECT 1 FROM unnest(prefixes) AS p WHERE starts_with(w, p)))
$$;

ALTER TABLE messages ADD COLUMN search_vector tsvector;

CREATE FUNCTION messages_search_vector() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.direction = 'out' AND NEW.kind = 'auto-reply' THEN
        NEW.search_vector := NULL;
    ELSE
        NEW.search_vector := mailgate_search_vector(NEW.subject, NEW.from_name, NEW.from_address, NEW.text);
    END IF;
    RETURN NEW;
END
$$;

UPDATE messages SET search_vector = mailgate_search_vector(subject, from_name, from_address, text)
WHERE NOT (direction = 'out' AND kind = 'auto-reply');

CREATE TRIGGER messages_search_vector BEFORE INSERT OR UPDATE OF subject, text, from_name, from_address
ON messages FOR EACH ROW EXECUTE FUNCTION messages_search_vector();

CREATE INDEX messages_search ON messages USING gin (search_vector);
