-- 012-dispatch-outcomes.sql - the PostgreSQL side of
-- sql/012-dispatch-outcomes.sql: the dispatchers' outcomes counted per
-- kind as they are recorded, for /metrics.
CREATE TABLE outbox_outcomes (
	kind    TEXT NOT NULL,
	outcome TEXT NOT NULL CHECK (outcome = 'delivered' OR outcome = 'retried' OR
				     outcome = 'dead'),
	n       BIGINT NOT NULL,
	last_at BIGINT NOT NULL,
	PRIMARY KEY (kind, outcome)
);
INSERT INTO outbox_outcomes (kind, outcome, n, last_at)
	SELECT kind, state, count(*), coalesce(max(done_at), 0) FROM outbox
	WHERE state = 'delivered' OR state = 'dead' GROUP BY kind, state;
INSERT INTO outbox_outcomes (kind, outcome, n, last_at)
	SELECT kind, 'retried', sum(attempts - (CASE WHEN state = 'delivered' OR state = 'dead'
						     THEN 1 ELSE 0 END)), 0
	FROM outbox WHERE attempts > 1 OR (attempts = 1 AND state <> 'delivered' AND
					  state <> 'dead')
	GROUP BY kind;

