-- 003-fewer-index-writes.sql - fewer index pages written per transaction.
-- Each index entry costs a page in the WAL on every commit that adds a
-- row; a draw wrote four pages, one of them for an index that only the
-- per-day win counts need.

-- Wins per day (stats, the stock check): only winning draws are indexed.
-- Draws per day is an operator's report and scans the table.
DROP INDEX draws_by_day;
CREATE INDEX draws_wins_by_day ON draws (promo, day, prize) WHERE prize IS NOT NULL;
-- The per-client daily claim cap only looks up claims with a client.
DROP INDEX invites_by_client_day;
CREATE INDEX invites_by_client_day ON invites (promo, client, day) WHERE client IS NOT NULL;
