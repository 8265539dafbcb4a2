-- 004-outbox-dead.sql - dead events are few and looked at often (/metrics
-- on every scrape, `outbox list --dead`): a partial index finds them
-- without scanning the whole outbox, and costs nothing for the rest.
CREATE INDEX outbox_dead ON outbox (id) WHERE state = 'dead';
