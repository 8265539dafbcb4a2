-- 010-no-invites-by-inviter.sql - an inviter's invites are found through
-- their grants. invites_by_inviter_granted was written by every claim at
-- the inviter's place in it, one more random b-tree page in the WAL for
-- nearly every claim (18 of the 84 pages a batch of 18 claims wrote in
-- bench/run). Only support's history of an inviter read it. The invites
-- that granted the inviter a ticket are the inviter's 'inviter' grants
-- (grants_by_user; ref is the invitee); those past the cap keep an index
-- of their own, which only they write. It leads with inviter: SQLite 3.40
-- prefers a range of the primary key (promo, invitee) to an index that
-- leads with promo as well, and would scan every invite of the promotion.
DROP INDEX invites_by_inviter_granted;
CREATE INDEX invites_past_cap_by_inviter ON invites (inviter) WHERE inviter_granted = 0;
