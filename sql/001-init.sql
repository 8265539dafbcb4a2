-- 001-init.sql - the ledger. SQLite is the source of truth.
-- Times are Unix milliseconds (UTC); "day" is the promotion-local date
-- (YYYY-MM-DD) a row belongs to. The unique indexes are the last line
-- against duplicate grants (invariants 1 and 2), not the only one.

CREATE TABLE promotions (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	definition TEXT NOT NULL,            -- the promotion file, canonical JSON
	loaded_at  INTEGER NOT NULL
);

-- One row per user who ever touched a promotion: the balance, kept in the
-- same transaction as every grant and draw. version grows by one on every
-- change; the Redis cache keeps only newer versions.
CREATE TABLE balances (
	promo      TEXT NOT NULL,
	uid        TEXT NOT NULL,
	granted    INTEGER NOT NULL DEFAULT 0,
	spent      INTEGER NOT NULL DEFAULT 0,
	version    INTEGER NOT NULL DEFAULT 0,
	first_seen INTEGER NOT NULL,         -- first visit: "how new" for invites
	PRIMARY KEY (promo, uid),
	CHECK (spent >= 0 AND granted >= spent)  -- invariant 3
) WITHOUT ROWID;

-- Every ticket given or taken back. reason: visit | inviter | invitee |
-- support | revoke. ref: the invitee (inviter grant), the inviter (invitee
-- grant), the support ticket (support, revoke).
CREATE TABLE grants (
	id         INTEGER PRIMARY KEY,
	promo      TEXT NOT NULL,
	uid        TEXT NOT NULL,
	reason     TEXT NOT NULL CHECK (reason IN ('visit','inviter','invitee','support','revoke')),
	amount     INTEGER NOT NULL,
	ref        TEXT,
	note       TEXT,
	created_at INTEGER NOT NULL,
	day        TEXT NOT NULL,
	CHECK (reason <> 'inviter' OR uid <> ref)    -- a self-invite never credits
);
CREATE UNIQUE INDEX grants_one_visit ON grants (promo, uid) WHERE reason = 'visit';
CREATE UNIQUE INDEX grants_one_invitee ON grants (promo, uid) WHERE reason = 'invitee';
CREATE UNIQUE INDEX grants_one_inviter_per_invitee ON grants (promo, ref) WHERE reason = 'inviter';
CREATE UNIQUE INDEX grants_one_per_ticket ON grants (promo, reason, ref) WHERE reason IN ('support','revoke');
CREATE INDEX grants_by_user ON grants (promo, uid);

CREATE TABLE invite_codes (
	code       TEXT PRIMARY KEY,
	promo      TEXT NOT NULL,
	uid        TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	UNIQUE (promo, uid)
) WITHOUT ROWID;

-- Credited invites: one per invitee and promotion (invariant 2).
-- inviter_granted is 0 when the inviter was past the cap.
CREATE TABLE invites (
	promo           TEXT NOT NULL,
	invitee         TEXT NOT NULL,
	inviter         TEXT NOT NULL,
	code            TEXT NOT NULL,
	inviter_granted INTEGER NOT NULL,
	client          TEXT,
	created_at      INTEGER NOT NULL,
	day             TEXT NOT NULL,
	PRIMARY KEY (promo, invitee),
	CHECK (invitee <> inviter)
) WITHOUT ROWID;
CREATE INDEX invites_by_inviter ON invites (promo, inviter);

-- Claims refused by a rule (kept for support and abuse review; not
-- balances). Malformed requests never get here.
CREATE TABLE claim_refusals (
	id         INTEGER PRIMARY KEY,
	promo      TEXT NOT NULL,
	invitee    TEXT NOT NULL,
	inviter    TEXT NOT NULL,
	code       TEXT NOT NULL,
	reason     TEXT NOT NULL,
	client     TEXT,
	created_at INTEGER NOT NULL,
	day        TEXT NOT NULL
);
CREATE INDEX claim_refusals_by_user ON claim_refusals (promo, invitee);
CREATE INDEX claim_refusals_by_client ON claim_refusals (promo, client, day);

-- Every draw with its outcome: the audit trail of fairness. rand is the
-- uniform integer in [0, 1e9) that decided it; stock_left is what was left
-- of the picked prize's stock for the day after this draw (NULL when the
-- number picked no prize).
CREATE TABLE draws (
	id         INTEGER PRIMARY KEY,
	promo      TEXT NOT NULL,
	uid        TEXT NOT NULL,
	request_id TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	day        TEXT NOT NULL,
	rand       INTEGER NOT NULL,
	picked     TEXT,                -- prize the number picked
	prize      TEXT,                -- prize won (NULL: a miss, also when picked's stock was gone)
	stock_left INTEGER,
	UNIQUE (promo, uid, request_id)
);
CREATE INDEX draws_by_day ON draws (promo, day, prize);

-- Prize stock taken per promotion-local day.
CREATE TABLE stock (
	promo TEXT NOT NULL,
	day   TEXT NOT NULL,
	prize TEXT NOT NULL,
	taken INTEGER NOT NULL,
	PRIMARY KEY (promo, day, prize)
) WITHOUT ROWID;

-- Events for the outside world, written in the same transaction as what
-- caused them. key is the stable Idempotency-Key.
CREATE TABLE outbox (
	id          INTEGER PRIMARY KEY,
	key         TEXT NOT NULL UNIQUE,
	kind        TEXT NOT NULL CHECK (kind IN ('reward.issue','notify.win','notify.invite')),
	promo       TEXT NOT NULL,
	uid         TEXT NOT NULL,
	payload     TEXT NOT NULL,
	state       TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending','delivered','dead','revoked')),
	attempts    INTEGER NOT NULL DEFAULT 0,
	next_at     INTEGER NOT NULL,
	lease_until INTEGER NOT NULL DEFAULT 0,
	last_status INTEGER,
	last_error  TEXT,
	created_at  INTEGER NOT NULL,
	done_at     INTEGER
);
CREATE INDEX outbox_due ON outbox (next_at) WHERE state = 'pending';
CREATE INDEX outbox_by_user ON outbox (promo, uid);
