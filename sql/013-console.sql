-- 013-console.sql - the web console: its operators, what they changed
-- that no other table records, the numbers of a promotion's finished
-- days, and the indexes that count one day without reading the others.

-- Operators are not users: a name, a role (viewer < support < owner),
-- and a serial that every operator token carries. Disabling moves the
-- serial on, so the tokens issued before stay dead when the operator is
-- enabled again; a role is read from here on every request.
CREATE TABLE operators (
	name       TEXT PRIMARY KEY,
	role       TEXT NOT NULL CHECK (role = 'viewer' OR role = 'support' OR role = 'owner'),
	serial     INTEGER NOT NULL,
	disabled   INTEGER NOT NULL DEFAULT 0 CHECK (disabled = 0 OR disabled = 1),
	created_at INTEGER NOT NULL,
	changed_at INTEGER NOT NULL
);

-- Changes that leave no other trace: a dead event made due again, an
-- operator added, disabled, enabled or given another role. actor: the
-- operator (a console sign-in or $SUDO_USER/$USER of luckydicectl).
-- (Grants and revokes keep their ticket and operator in grants; pauses in
-- the promotion's history.)
CREATE TABLE operator_log (
	id      INTEGER PRIMARY KEY,
	at      INTEGER NOT NULL,
	actor   TEXT NOT NULL,
	action  TEXT NOT NULL,
	subject TEXT NOT NULL,
	ticket  TEXT,
	note    TEXT
);

-- A finished day's numbers, counted once (lib/stats.c): nothing is
-- written under a day once it is over, so they never change. kind:
-- 'grant' (key: the reason; n grants of amount dice in all), 'draw'
-- (key ''), 'win' (key: the prize), 'refusal' (key: the reason), and
-- 'day' (key '', n 0): the day was counted, also when nothing happened.
CREATE TABLE stats_days (
	promo  TEXT NOT NULL,
	day    TEXT NOT NULL,
	kind   TEXT NOT NULL,
	key    TEXT NOT NULL,
	n      INTEGER NOT NULL,
	amount INTEGER NOT NULL,
	PRIMARY KEY (promo, day, kind, key)
) WITHOUT ROWID;

-- One day's grants, draws and refused claims, each counted from its own
-- range. Each leads with the day: the days only grow, so every new entry
-- goes to the very end of the b-tree, where SQLite appends without
-- splitting a page in the middle, and a batch of the writer writes the
-- last page or two (led by the promotion, each day's range sat in the
-- middle of the tree and a batch split pages there: docs/performance.md,
-- the web console). Grants are counted through the table's rows of the
-- day, which are next to each other; draws and refused claims from the
-- index alone.
CREATE INDEX grants_by_day ON grants (day, promo);
CREATE INDEX draws_by_day ON draws (day, promo);
CREATE INDEX claim_refusals_by_day ON claim_refusals (day, promo, reason);
