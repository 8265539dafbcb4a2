-- 002-invite-indexes.sql - indexes the invite rules need to stay O(log n).
-- Without them SQLite 3.40 answers "credited invites of this inviter"
-- (with inviter_granted = 1) and "claims of this client today" by scanning
-- every invite of the promotion: each claim got slower as the campaign grew.

-- Covers the inviter's cap count; replaces the (promo, inviter) index.
CREATE INDEX invites_by_inviter_granted ON invites (promo, inviter, inviter_granted);
DROP INDEX invites_by_inviter;
-- The per-client daily claim cap.
CREATE INDEX invites_by_client_day ON invites (promo, client, day);
