-- 005-invites-credited.sql - the inviter's cap without counting. Every
-- credited invite that gave its inviter a grant adds one to the inviter's
-- balances row, in the same transaction, so the cap check reads one row
-- instead of counting the inviter's invites (a cost that grew with every
-- credit: a claim for an inviter with many invites scanned them all).
ALTER TABLE balances ADD COLUMN invites_credited INTEGER NOT NULL DEFAULT 0;
UPDATE balances SET invites_credited = (
	SELECT count(*) FROM invites i
	WHERE i.promo = balances.promo AND i.inviter = balances.uid AND i.inviter_granted = 1)
WHERE EXISTS (SELECT 1 FROM invites i WHERE i.promo = balances.promo AND i.inviter = balances.uid);
