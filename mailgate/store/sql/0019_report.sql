-- The weekly report: one row per queue and week it was mailed for, written in the transaction that
-- queues the mails, so a timer that fires twice (a restart, a restored backup) sends it once.
CREATE TABLE report_sent (
    queue       TEXT    NOT NULL,
    period      TEXT    NOT NULL,             -- the week's first day, 'YYYY-MM-DD' in gateway.timezone
    sent_at     TEXT    NOT NULL,
    PRIMARY KEY (queue, period)
) WITHOUT ROWID;
