-- 007-grants-by-user-unique.sql - one index where two were: "the grants
-- of a user" (support's history, the per-user sums) and "one visit grant
-- and one invitee credit per user" (invariants 1 and 2). The key's last
-- part is 0 for visit and invitee grants, so a second one of those is a
-- duplicate; for every other reason it is the grant's own id, which never
-- repeats. Every index is one more page in the WAL on every commit that
-- adds a grant: a visit now writes two b-trees of grants instead of
-- three, a claim seven instead of nine.
DROP INDEX grants_by_user;
CREATE UNIQUE INDEX grants_by_user ON grants (promo, uid, reason,
	(CASE WHEN reason IN ('visit', 'invitee') THEN 0 ELSE id END));
DROP INDEX grants_once_per_user;
