-- voipqa reference platform: the SQLite database Kamailio (db_sqlite) reads and writes.
-- Created at `voipqa lab up` from this file, then filled from lab/seed.yaml.
-- Stock Kamailio tables keep their stock columns and versions
-- (/usr/share/kamailio/db_sqlite/*-create.sql); the acc tables get extra columns
-- (all nullable: db_sqlite writes empty values as NULL). The stock acc/missed_calls
-- columns are made nullable too: a request rejected in request_route has no To tag, and
-- db_sqlite's NULL for it would break a NOT NULL constraint (the row would be lost).
-- Timestamps written by Kamailio itself (acc.time, acc_cdrs.start_time/end_time) are
-- Julian-day REALs; voipqa's own timestamps (*_ts) are unix seconds with microseconds.

CREATE TABLE version (
    id INTEGER PRIMARY KEY NOT NULL,
    table_name VARCHAR(32) NOT NULL,
    table_version INTEGER DEFAULT 0 NOT NULL,
    CONSTRAINT version_table_name_idx UNIQUE (table_name)
);
INSERT INTO version (table_name, table_version) VALUES ('version', 1);

-- auth_db
CREATE TABLE subscriber (
    id INTEGER PRIMARY KEY NOT NULL,
    username VARCHAR(64) DEFAULT '' NOT NULL,
    domain VARCHAR(64) DEFAULT '' NOT NULL,
    password VARCHAR(64) DEFAULT '' NOT NULL,
    ha1 VARCHAR(128) DEFAULT '' NOT NULL,
    ha1b VARCHAR(128) DEFAULT '' NOT NULL,
    CONSTRAINT subscriber_account_idx UNIQUE (username, domain)
);
CREATE INDEX subscriber_username_idx ON subscriber (username);
INSERT INTO version (table_name, table_version) VALUES ('subscriber', 7);

-- permissions (allow-list: grp 1)
CREATE TABLE address (
    id INTEGER PRIMARY KEY NOT NULL,
    grp INTEGER DEFAULT 1 NOT NULL,
    ip_addr VARCHAR(50) NOT NULL,
    mask INTEGER DEFAULT 32 NOT NULL,
    port SMALLINT DEFAULT 0 NOT NULL,
    tag VARCHAR(64)
);
INSERT INTO version (table_name, table_version) VALUES ('address', 6);

CREATE TABLE trusted (
    id INTEGER PRIMARY KEY NOT NULL,
    src_ip VARCHAR(50) NOT NULL,
    proto VARCHAR(4) NOT NULL,
    from_pattern VARCHAR(64) DEFAULT NULL,
    ruri_pattern VARCHAR(64) DEFAULT NULL,
    tag VARCHAR(64),
    priority INTEGER DEFAULT 0 NOT NULL
);
INSERT INTO version (table_name, table_version) VALUES ('trusted', 6);

-- acc: successful transactions (INVITE 200, BYE 200)
CREATE TABLE acc (
    id INTEGER PRIMARY KEY NOT NULL,
    method VARCHAR(16) DEFAULT '',
    from_tag VARCHAR(128) DEFAULT '',
    to_tag VARCHAR(128) DEFAULT '',
    callid VARCHAR(255) DEFAULT '',
    sip_code VARCHAR(3) DEFAULT '',
    sip_reason VARCHAR(128) DEFAULT '',
    time TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    from_user VARCHAR(64),
    to_user VARCHAR(64),
    account VARCHAR(64),
    invite_ts REAL,
    event_ts REAL,
    carrier VARCHAR(64),
    reason VARCHAR(128)
);
CREATE INDEX acc_callid_idx ON acc (callid);
INSERT INTO version (table_name, table_version) VALUES ('acc', 5);

-- missed_calls: every failed attempt after auth (written by acc_db_request in the script)
CREATE TABLE missed_calls (
    id INTEGER PRIMARY KEY NOT NULL,
    method VARCHAR(16) DEFAULT '',
    from_tag VARCHAR(128) DEFAULT '',
    to_tag VARCHAR(128) DEFAULT '',
    callid VARCHAR(255) DEFAULT '',
    sip_code VARCHAR(3) DEFAULT '',
    sip_reason VARCHAR(128) DEFAULT '',
    time TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    from_user VARCHAR(64),
    to_user VARCHAR(64),
    account VARCHAR(64),
    invite_ts REAL,
    event_ts REAL,
    carrier VARCHAR(64),
    reason VARCHAR(128)
);
CREATE INDEX missed_calls_callid_idx ON missed_calls (callid);
INSERT INTO version (table_name, table_version) VALUES ('missed_calls', 4);

-- acc_cdrs: one row per answered call (dialog CDR, written when the dialog ends)
CREATE TABLE acc_cdrs (
    id INTEGER PRIMARY KEY NOT NULL,
    start_time TIMESTAMP WITHOUT TIME ZONE DEFAULT '2000-01-01 00:00:00' NOT NULL,
    end_time TIMESTAMP WITHOUT TIME ZONE DEFAULT '2000-01-01 00:00:00' NOT NULL,
    duration REAL DEFAULT 0 NOT NULL,
    call_id VARCHAR(255),
    from_user VARCHAR(64),
    to_user VARCHAR(64),
    account VARCHAR(64),
    invite_ts REAL,
    answer_ts REAL,
    carrier VARCHAR(64),
    end_reason VARCHAR(32)
);
CREATE INDEX acc_cdrs_start_time_idx ON acc_cdrs (start_time);
CREATE INDEX acc_cdrs_call_id_idx ON acc_cdrs (call_id);
INSERT INTO version (table_name, table_version) VALUES ('acc_cdrs', 2);

-- acc_queue: the accounting events of `accounting: queued` (lab/kamailio.cfg, ACCOUNTING).
-- Kamailio's one accounting writer (route[ACC_WRITER]) inserts them, and at shutdown
-- mqueue saves the events still queued into it too: key 'cdr' | 'acc' | 'missed', val =
-- the event as acc_json writes it (JSON: every value a string, "" for a value acc has
-- not, "time" whole unix seconds). The BEFORE INSERT triggers write each event's row into
-- acc_cdrs / acc / missed_calls exactly as acc's DB backend through db_sqlite writes it,
-- then drop the event (RAISE(IGNORE)), so the table stays empty; an event with another
-- key stays here for an operator to see. What db_sqlite does, done again in SQL:
--   TIMESTAMP columns: acc passes whole seconds (acc_cdrs: the seconds of the dialog's
--     "sec.msec" times), stored as the Julian-day REAL (t - 0.5) / 86400 + 2440587.5
--     (KAMAILIO-NOTES pitfall 4)
--   duration: the REAL of the dialog's "sec.msec" duration
--   every other value: text ('200' too; REAL columns convert numeric text themselves);
--     a value acc has not is NULL (pitfall 3), acc_json's "" for it -> NULLIF(..., '')
CREATE TABLE acc_queue (
    id INTEGER PRIMARY KEY NOT NULL,
    key VARCHAR(64) NOT NULL,
    val TEXT NOT NULL
);

CREATE TRIGGER acc_queue_cdr BEFORE INSERT ON acc_queue WHEN NEW.key = 'cdr'
BEGIN
    INSERT INTO acc_cdrs (start_time, end_time, duration, call_id, from_user, to_user, account,
                          invite_ts, answer_ts, carrier, end_reason)
    VALUES ((CAST(NULLIF(json_extract(NEW.val, '$.start_time'), '') AS INTEGER) - 0.5) / 86400.0 + 2440587.5,
            (CAST(NULLIF(json_extract(NEW.val, '$.end_time'), '') AS INTEGER) - 0.5) / 86400.0 + 2440587.5,
            CAST(NULLIF(json_extract(NEW.val, '$.duration'), '') AS REAL),
            NULLIF(json_extract(NEW.val, '$.call_id'), ''),
            NULLIF(json_extract(NEW.val, '$.from_user'), ''),
            NULLIF(json_extract(NEW.val, '$.to_user'), ''),
            NULLIF(json_extract(NEW.val, '$.account'), ''),
            NULLIF(json_extract(NEW.val, '$.invite_ts'), ''),
            NULLIF(json_extract(NEW.val, '$.answer_ts'), ''),
            NULLIF(json_extract(NEW.val, '$.carrier'), ''),
            NULLIF(json_extract(NEW.val, '$.end_reason'), ''));
    SELECT RAISE(IGNORE);
END;

CREATE TRIGGER acc_queue_acc BEFORE INSERT ON acc_queue WHEN NEW.key = 'acc'
BEGIN
    INSERT INTO acc (method, from_tag, to_tag, callid, sip_code, sip_reason, time,
                     from_user, to_user, account, invite_ts, event_ts, carrier, reason)
    VALUES (NULLIF(json_extract(NEW.val, '$.method'), ''),
            NULLIF(json_extract(NEW.val, '$.from_tag'), ''),
            NULLIF(json_extract(NEW.val, '$.to_tag'), ''),
            NULLIF(json_extract(NEW.val, '$.callid'), ''),
            NULLIF(json_extract(NEW.val, '$.sip_code'), ''),
            NULLIF(json_extract(NEW.val, '$.sip_reason'), ''),
            (CAST(json_extract(NEW.val, '$.time') AS INTEGER) - 0.5) / 86400.0 + 2440587.5,
            NULLIF(json_extract(NEW.val, '$.from_user'), ''),
            NULLIF(json_extract(NEW.val, '$.to_user'), ''),
            NULLIF(json_extract(NEW.val, '$.account'), ''),
            NULLIF(json_extract(NEW.val, '$.invite_ts'), ''),
            NULLIF(json_extract(NEW.val, '$.event_ts'), ''),
            NULLIF(json_extract(NEW.val, '$.carrier'), ''),
            NULLIF(json_extract(NEW.val, '$.reason'), ''));
    SELECT RAISE(IGNORE);
END;

CREATE TRIGGER acc_queue_missed BEFORE INSERT ON acc_queue WHEN NEW.key = 'missed'
BEGIN
    INSERT INTO missed_calls (method, from_tag, to_tag, callid, sip_code, sip_reason, time,
                              from_user, to_user, account, invite_ts, event_ts, carrier, reason)
    VALUES (NULLIF(json_extract(NEW.val, '$.method'), ''),
            NULLIF(json_extract(NEW.val, '$.from_tag'), ''),
            NULLIF(json_extract(NEW.val, '$.to_tag'), ''),
            NULLIF(json_extract(NEW.val, '$.callid'), ''),
            NULLIF(json_extract(NEW.val, '$.sip_code'), ''),
            NULLIF(json_extract(NEW.val, '$.sip_reason'), ''),
            (CAST(json_extract(NEW.val, '$.time') AS INTEGER) - 0.5) / 86400.0 + 2440587.5,
            NULLIF(json_extract(NEW.val, '$.from_user'), ''),
            NULLIF(json_extract(NEW.val, '$.to_user'), ''),
            NULLIF(json_extract(NEW.val, '$.account'), ''),
            NULLIF(json_extract(NEW.val, '$.invite_ts'), ''),
            NULLIF(json_extract(NEW.val, '$.event_ts'), ''),
            NULLIF(json_extract(NEW.val, '$.carrier'), ''),
            NULLIF(json_extract(NEW.val, '$.reason'), ''));
    SELECT RAISE(IGNORE);
END;

-- voipqa: prepaid balances and blocked destinations (read live by sqlops)
CREATE TABLE voipqa_account (
    account VARCHAR(64) PRIMARY KEY NOT NULL,
    balance REAL DEFAULT 0 NOT NULL,
    name VARCHAR(64)
);

CREATE TABLE voipqa_blocked_prefix (
    prefix VARCHAR(32) PRIMARY KEY NOT NULL,
    reason VARCHAR(128)
);

-- per-account destination rules: kind 'deny' (these prefixes -> 403) or 'allow' (when an
-- account has any, every destination outside them -> 403); read live on every INVITE
CREATE TABLE voipqa_account_prefix (
    account VARCHAR(64) NOT NULL,
    kind VARCHAR(8) NOT NULL CHECK (kind IN ('deny', 'allow')),
    prefix VARCHAR(32) NOT NULL,
    PRIMARY KEY (account, kind, prefix)
);

-- The billing view: exactly one row per call attempt that reached routing or was
-- rejected after auth. Answered calls come from acc_cdrs (the dialog CDR), failed ones
-- from missed_calls. All times are unix seconds (REAL). end_reason says why an answered
-- call ended: caller-bye | callee-bye | media-timeout | session-expired | max-duration
-- (NULL for a call that was never answered: sip_code/sip_reason say why it failed).
CREATE VIEW voipqa_cdr AS
SELECT
    c.call_id                                   AS call_id,
    c.from_user                                 AS from_user,
    c.to_user                                   AS to_user,
    c.account                                   AS account,
    CAST(c.invite_ts AS REAL)                   AS start_time,
    COALESCE(CAST(c.answer_ts AS REAL),
             (c.start_time - 2440587.5) * 86400.0 + 0.5) AS answer_time,
    COALESCE(CAST(c.answer_ts AS REAL),
             (c.start_time - 2440587.5) * 86400.0 + 0.5) + c.duration AS end_time,
    CAST(c.duration AS REAL)                    AS duration,
    200                                         AS sip_code,
    'OK'                                        AS sip_reason,
    c.carrier                                   AS carrier,
    c.end_reason                                AS end_reason
FROM acc_cdrs AS c
UNION ALL
SELECT
    m.callid                                    AS call_id,
    m.from_user                                 AS from_user,
    m.to_user                                   AS to_user,
    m.account                                   AS account,
    CAST(m.invite_ts AS REAL)                   AS start_time,
    NULL                                        AS answer_time,
    CAST(m.event_ts AS REAL)                    AS end_time,
    0.0                                         AS duration,
    CAST(m.sip_code AS INTEGER)                 AS sip_code,
    COALESCE(m.reason, m.sip_reason)            AS sip_reason,
    m.carrier                                   AS carrier,
    NULL                                        AS end_reason
FROM missed_calls AS m;
