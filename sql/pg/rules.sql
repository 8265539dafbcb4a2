-- rules.sql - the write rules' data steps on PostgreSQL, one function
-- each, as the current program calls them. Not a migration: 'luckydicectl
-- init' makes them again (CREATE OR REPLACE) after the migrations, every
-- time, so that this file is the one place they are written and a new
-- program brings its own. They may use every column of the latest schema.
--
-- Why functions: a rule costs one round trip to the server instead of one
-- per statement. lib/rules.c decides what needs no data (the promotion's
-- days, the day's name, the random number and the prize it points at, the
-- stock open now, the event keys) and passes it in; these functions make
-- the checks and the writes the SQLite path makes, in the same order, in
-- the caller's transaction, with fewer statements where one can do the
-- work of two (the server's CPU per statement is what a write costs
-- here). Each statement is written out in the function that runs it: a
-- call of one PL/pgSQL function from another costs about as much as the
-- statement itself.

-- The first visit grant (rules_visit).
CREATE OR REPLACE FUNCTION ld_visit(p_promo text, p_uid text, p_amount bigint, p_now bigint, p_day text,
			 OUT o_granted boolean, OUT b_granted bigint, OUT b_spent bigint,
			 OUT b_version bigint)
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO grants (promo, uid, reason, amount, created_at, day)
	VALUES (p_promo, p_uid, 'visit', p_amount, p_now, p_day)
	ON CONFLICT DO NOTHING;
	o_granted := FOUND;
	IF o_granted THEN
		INSERT INTO balances AS b (promo, uid, first_seen, granted, version)
		VALUES (p_promo, p_uid, p_now, p_amount, 1)
		ON CONFLICT (promo, uid) DO UPDATE
		SET granted = b.granted + excluded.granted, version = b.version + 1
		RETURNING b.granted, b.spent, b.version INTO b_granted, b_spent, b_version;
	ELSE
		SELECT b.granted, b.spent, b.version INTO b_granted, b_spent, b_version
		FROM balances b WHERE b.promo = p_promo AND b.uid = p_uid;
	END IF;
END $$;

-- An invite claim (rules_claim): the checks in their order, a refusal
-- recorded, or the credit with the inviter's grant under the cap and the
-- notify.invite event (p_key; its payload is built here, since the
-- inviter's balance is known only here). o_outcome is the rule's code.
CREATE OR REPLACE FUNCTION ld_claim(p_promo text, p_uid text, p_code text, p_client text,
			 p_now bigint, p_day text, p_visit bigint, p_invitee bigint,
			 p_inviter bigint, p_max_credited bigint, p_new_within_ms bigint,
			 p_client_cap bigint, p_key text,
			 OUT o_outcome text, OUT o_inviter text, OUT o_granted boolean,
			 OUT o_visit_granted boolean, OUT o_inviter_granted boolean,
			 OUT b_granted bigint, OUT b_spent bigint, OUT b_version bigint,
			 OUT i_granted bigint, OUT i_spent bigint, OUT i_version bigint)
LANGUAGE plpgsql AS $$
DECLARE
	seen bigint;
	credited boolean;
	n bigint;
BEGIN
	o_outcome := 'ok'; o_granted := false; o_visit_granted := false;
	o_inviter_granted := false;
	-- One invitee's claims on several connections at once run in turn,
	-- and the second sees the first's invite (each statement sees what
	-- committed before it): 'already_credited', not a unique violation.
	PERFORM pg_advisory_xact_lock(hashtextextended('claim/' || p_promo || '/' || p_uid, 0));
	-- The code's owner, whether the invitee was credited already and
	-- when they were first seen, in one statement; then the checks in
	-- their order.
	SELECT c.uid,
	       EXISTS (SELECT 1 FROM invites i WHERE i.promo = p_promo AND i.invitee = p_uid),
	       (SELECT b.first_seen FROM balances b WHERE b.promo = p_promo AND b.uid = p_uid)
	INTO o_inviter, credited, seen
	FROM invite_codes c WHERE c.code = p_code AND c.promo = p_promo;
	IF NOT FOUND THEN
		o_outcome := 'unknown_code';
		RETURN;
	END IF;
	IF p_uid = o_inviter THEN
		o_outcome := 'self_invite';
	ELSIF credited THEN
		o_outcome := 'already_credited';
	ELSIF seen IS NOT NULL AND p_now - seen > p_new_within_ms THEN
		o_outcome := 'not_new_user';
	ELSIF p_client_cap > 0 AND p_client IS NOT NULL THEN
		-- Claims from one client through several hosts at once are
		-- counted one after the other.
		PERFORM pg_advisory_xact_lock(hashtextextended(p_promo || '/' || p_client || '/' || p_day, 0));
		SELECT count(*) INTO n FROM invites i
		WHERE i.promo = p_promo AND i.client = p_client AND i.day = p_day;
		IF n >= p_client_cap THEN
			o_outcome := 'claim_limited';
		END IF;
	END IF;
	IF o_outcome <> 'ok' THEN
		INSERT INTO claim_refusals (promo, invitee, inviter, code, reason, client, created_at, day)
		VALUES (p_promo, p_uid, o_inviter, p_code, o_outcome, p_client, p_now, p_day);
		SELECT b.granted, b.spent, b.version INTO b_granted, b_spent, b_version
		FROM balances b WHERE b.promo = p_promo AND b.uid = p_uid;
		RETURN;
	END IF;

	-- The visit grant (when the invitee has none) and the invitee's.
	WITH g AS (
		INSERT INTO grants (promo, uid, reason, amount, ref, created_at, day)
		VALUES (p_promo, p_uid, 'visit', p_visit, NULL, p_now, p_day),
		       (p_promo, p_uid, 'invitee', p_invitee, o_inviter, p_now, p_day)
		ON CONFLICT DO NOTHING
		RETURNING reason)
	SELECT coalesce(bool_or(g.reason = 'visit'), false),
	       coalesce(bool_or(g.reason = 'invitee'), false)
	INTO o_visit_granted, o_granted FROM g;
	IF NOT o_granted THEN
		RAISE unique_violation USING MESSAGE = 'invitee credited twice';
	END IF;
	INSERT INTO balances AS b (promo, uid, first_seen, granted, version)
	VALUES (p_promo, p_uid, p_now, p_invitee + CASE WHEN o_visit_granted THEN p_visit ELSE 0 END, 1)
	ON CONFLICT (promo, uid) DO UPDATE
	SET granted = b.granted + excluded.granted, version = b.version + 1
	RETURNING b.granted, b.spent, b.version INTO b_granted, b_spent, b_version;

	INSERT INTO balances AS b (promo, uid, first_seen, invites_credited, granted, version)
	VALUES (p_promo, o_inviter, p_now, 1, p_inviter, 1)
	ON CONFLICT (promo, uid) DO UPDATE
	SET invites_credited = b.invites_credited + 1, granted = b.granted + excluded.granted,
	    version = b.version + 1
	WHERE b.invites_credited < p_max_credited
	RETURNING b.granted, b.spent, b.version INTO i_granted, i_spent, i_version;
	o_inviter_granted := FOUND;

	INSERT INTO invites (promo, invitee, inviter, code, inviter_granted, client, created_at, day)
	VALUES (p_promo, p_uid, o_inviter, p_code, o_inviter_granted::int, p_client, p_now, p_day);
	IF NOT o_inviter_granted THEN
		RETURN;
	END IF;
	INSERT INTO grants (promo, uid, reason, amount, ref, created_at, day)
	VALUES (p_promo, o_inviter, 'inviter', p_inviter, p_uid, p_now, p_day)
	ON CONFLICT DO NOTHING;
	IF NOT FOUND THEN
		RAISE unique_violation USING MESSAGE = 'inviter credited twice for one invitee';
	END IF;
	INSERT INTO outbox (key, kind, promo, uid, payload, next_at, created_at, invitee)
	VALUES (p_key, 'notify.invite', p_promo, o_inviter,
		format('{"invitee":%s,"granted":%s,"balance":%s,"event":"notify.invite","key":%s,"promotion":%s,"user":%s}',
		       to_json(p_uid), p_inviter, i_granted - i_spent, to_json(p_key),
		       to_json(p_promo), to_json(o_inviter)),
		p_now, p_now, p_uid)
	ON CONFLICT (key) DO NOTHING;
END $$;

-- A draw (rules_draw): the recorded draw again for a request_id seen
-- before; else, while the promotion is active (p_active), a ticket spent,
-- the stock of the prize the number picked (p_picked, NULL: none) taken
-- if any is open (p_open), the draw recorded and, on a win, its
-- reward.issue and notify.win events (keys: p_key_reward and p_key_notify
-- with "{id}" standing for the draw's id).
CREATE OR REPLACE FUNCTION ld_draw(p_promo text, p_uid text, p_request_id text, p_now bigint,
			p_day text, p_active boolean, p_rand bigint, p_picked text,
			p_prize_name text, p_open bigint, p_stock bigint, p_won_at text,
			p_key_reward text, p_key_notify text,
			OUT o_outcome text, OUT o_replay boolean, OUT o_id bigint, OUT o_at_ms bigint,
			OUT o_rand bigint, OUT o_prize text,
			OUT b_granted bigint, OUT b_spent bigint, OUT b_version bigint)
LANGUAGE plpgsql AS $$
DECLARE
	won boolean := false;
	taken bigint;
	left_ bigint;
	k text;
	k2 text;
	prize_json text;
BEGIN
	o_outcome := 'ok'; o_replay := false;
	-- A user's draws on several connections at once take the balance row
	-- first and run in turn: the second of one request_id then finds the
	-- first's draw and replays it (each statement sees what committed
	-- before it), instead of spending a second dice or failing on the
	-- unique index. The lookup is a statement of its own: one that waited
	-- for a row lock re-reads only the locked row, not the draw the other
	-- committed meanwhile.
	PERFORM 1 FROM balances b WHERE b.promo = p_promo AND b.uid = p_uid FOR UPDATE;
	SELECT d.id, d.created_at, d.rand, d.prize INTO o_id, o_at_ms, o_rand, o_prize
	FROM draws d WHERE d.promo = p_promo AND d.uid = p_uid AND d.request_id = p_request_id;
	IF FOUND THEN
		o_replay := true;
		SELECT b.granted, b.spent, b.version INTO b_granted, b_spent, b_version
		FROM balances b WHERE b.promo = p_promo AND b.uid = p_uid;
		RETURN;
	END IF;
	IF NOT p_active THEN
		o_outcome := 'promotion_not_active';
		RETURN;
	END IF;
	UPDATE balances b SET spent = b.spent + 1, version = b.version + 1
	WHERE b.promo = p_promo AND b.uid = p_uid AND b.granted > b.spent
	RETURNING b.granted, b.spent, b.version INTO b_granted, b_spent, b_version;
	IF NOT FOUND THEN
		o_outcome := 'no_tickets';
		RETURN;
	END IF;
	o_rand := p_rand; o_at_ms := p_now;
	IF p_picked IS NOT NULL THEN
		IF p_open > 0 THEN
			-- Every transaction takes a day's stock rows in one order,
			-- so that batches on two hosts never wait for each other
			-- in a circle.
			PERFORM 1 FROM stock s WHERE s.promo = p_promo AND s.day = p_day
			ORDER BY s.prize FOR UPDATE;
			INSERT INTO stock AS s (promo, day, prize, taken) VALUES (p_promo, p_day, p_picked, 1)
			ON CONFLICT (promo, day, prize) DO UPDATE SET taken = s.taken + 1
			WHERE s.taken < p_open
			RETURNING s.taken INTO taken;
			won := FOUND;
		END IF;
		IF NOT won THEN
			SELECT s.taken INTO taken FROM stock s
			WHERE s.promo = p_promo AND s.day = p_day AND s.prize = p_picked;
		END IF;
		left_ := p_stock - coalesce(taken, 0);
	END IF;
	IF won THEN
		o_prize := p_picked;
	END IF;
	INSERT INTO draws (promo, uid, request_id, created_at, day, rand, picked, prize, stock_left)
	VALUES (p_promo, p_uid, p_request_id, p_now, p_day, p_rand, p_picked, o_prize, left_)
	RETURNING draws.id INTO o_id;
	IF NOT won THEN
		RETURN;
	END IF;
	prize_json := format('{"prize":{"id":%s,"name":%s},"draw_id":%s,"day":%s,"won_at":%s,',
			     to_json(p_picked), to_json(p_prize_name), o_id, to_json(p_day),
			     to_json(p_won_at));
	-- Its reward.issue and notify.win events, in one statement.
	k := replace(p_key_reward, '{id}', o_id::text);
	k2 := replace(p_key_notify, '{id}', o_id::text);
	INSERT INTO outbox (key, kind, promo, uid, payload, next_at, created_at, draw_id)
	VALUES (k, 'reward.issue', p_promo, p_uid,
		prize_json || format('"event":"reward.issue","key":%s,"promotion":%s,"user":%s}',
				     to_json(k), to_json(p_promo), to_json(p_uid)),
		p_now, p_now, o_id),
	       (k2, 'notify.win', p_promo, p_uid,
		prize_json || format('"event":"notify.win","key":%s,"promotion":%s,"user":%s}',
				     to_json(k2), to_json(p_promo), to_json(p_uid)),
		p_now, p_now, o_id)
	ON CONFLICT (key) DO NOTHING;
END $$;
