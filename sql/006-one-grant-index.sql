-- 006-one-grant-index.sql - "one visit grant per user" and "one invitee
-- credit per user" (invariants 1 and 2) in one partial unique index
-- instead of two. A claim writes both grants for its invitee, and every
-- index is one more page in the WAL on every commit.
CREATE UNIQUE INDEX grants_once_per_user ON grants (promo, uid, reason)
	WHERE reason IN ('visit', 'invitee');
DROP INDEX grants_one_visit;
DROP INDEX grants_one_invitee;
