-- 009-no-outbox-by-user.sql - the outbox is no longer indexed by user.
-- Only support's history of a user read it; the history now finds a
-- user's events by their keys, from the user's wins and the invites that
-- granted them a ticket. Every event (one per claim, two per win) wrote
-- this index at a random place: the replay of a whole campaign took
-- 18.6-20.0 s without it against 18.6-23.4 s with it (three runs each).
DROP INDEX outbox_by_user;
