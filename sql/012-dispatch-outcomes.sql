-- 012-dispatch-outcomes.sql - what the dispatchers did, for /metrics.
--
-- outbox_outcomes counts, per kind of event, the outcomes recorded:
-- delivered (a 2xx), retried (an attempt failed, the event is due again
-- later) and dead (refused, or out of attempts), with the time of the
-- latest of each. The dispatcher adds to it in the same transaction as the
-- outcomes themselves (lib/outbox.c), so a scrape reads nine rows instead
-- of counting a campaign's outbox (420,000 rows: more than half a second)
-- each time, and the counts are the same whichever host delivered. They
-- start from the rows there are: delivered and dead events as they stand,
-- and as retries the failed attempts the rows still show.
CREATE TABLE outbox_outcomes (
	kind    TEXT NOT NULL,
	outcome TEXT NOT NULL CHECK (outcome = 'delivered' OR outcome = 'retried' OR
				     outcome = 'dead'),
	n       INTEGER NOT NULL,
	last_at INTEGER NOT NULL,  -- ms; 0: not known
	PRIMARY KEY (kind, outcome)
) WITHOUT ROWID;
INSERT INTO outbox_outcomes (kind, outcome, n, last_at)
	SELECT kind, state, count(*), coalesce(max(done_at), 0) FROM outbox
	WHERE state = 'delivered' OR state = 'dead' GROUP BY kind, state;
INSERT INTO outbox_outcomes (kind, outcome, n, last_at)
	SELECT kind, 'retried', sum(attempts - (CASE WHEN state = 'delivered' OR state = 'dead'
						     THEN 1 ELSE 0 END)), 0
	FROM outbox WHERE attempts > 1 OR (attempts = 1 AND state <> 'delivered' AND
					  state <> 'dead')
	GROUP BY kind;

