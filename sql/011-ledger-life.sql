-- 011-ledger-life.sql - what the ledger needs to be backed up, restored,
-- changed and forgotten safely.
--
-- ledger_meta holds the ledger id: a random name made here (and so by
-- 'luckydicectl init') and made anew by 'luckydicectl restore'. Every new
-- event key and every Redis key carries it, so that a ledger restored from
-- a backup can never issue an Idempotency-Key that was issued (and
-- delivered) before the restore, nor read a cached balance from after the
-- backup. PostgreSQL has the table since its first script.
CREATE TABLE ledger_meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO ledger_meta (key, value) VALUES ('ledger_id', lower(hex(randomblob(8))));

-- What an event is about, instead of parsing its key: the draw of a
-- reward.issue or notify.win, the invitee of a notify.invite. A user's
-- history and the winners' export find events through them, whatever
-- ledger id the key carries. Filled in here from the keys written so far
-- ("<promo>/draw/<id>/<what>", "<promo>/invite/<invitee>/notify").
ALTER TABLE outbox ADD COLUMN draw_id INTEGER;
ALTER TABLE outbox ADD COLUMN invitee TEXT;
UPDATE outbox SET draw_id = CAST(substr(key, length(promo) + 7) AS INTEGER)
	WHERE kind <> 'notify.invite' AND substr(key, 1, length(promo) + 6) = promo || '/draw/';
UPDATE outbox SET invitee = substr(key, length(promo) + 9, length(key) - length(promo) - 15)
	WHERE kind = 'notify.invite' AND substr(key, 1, length(promo) + 8) = promo || '/invite/'
	AND substr(key, -7) = '/notify';
CREATE INDEX outbox_by_draw ON outbox (draw_id) WHERE draw_id IS NOT NULL;
CREATE INDEX outbox_by_invitee ON outbox (promo, invitee) WHERE invitee IS NOT NULL;

-- The kill switch: a paused promotion refuses visits, claims and draws.
ALTER TABLE promotions ADD COLUMN paused_at INTEGER;
ALTER TABLE promotions ADD COLUMN paused_by TEXT;
ALTER TABLE promotions ADD COLUMN paused_reason TEXT;

-- Every change of a promotion, newest last: each file loaded (content as
-- read), each pause and resume, by whom. A promotion loaded before this
-- migration starts with its stored definition, by nobody known.
CREATE TABLE promotion_history (
	id       INTEGER PRIMARY KEY,
	promo    TEXT NOT NULL,
	at       INTEGER NOT NULL,
	actor    TEXT,
	action   TEXT NOT NULL CHECK (action = 'load' OR action = 'pause' OR action = 'resume'),
	content  TEXT,           -- load: the file as read
	note     TEXT            -- pause: the reason; load: the refusals overridden (--force)
);
CREATE INDEX promotion_history_by_promo ON promotion_history (promo, id);
INSERT INTO promotion_history (promo, at, actor, action, content, note)
	SELECT id, loaded_at, NULL, 'load', definition, 'stored before the history was kept'
	FROM promotions ORDER BY id;
