/*
 * t/unit/writer.c - group commit on a real SQLite file: in a batch each
 * rule call is all-or-nothing on its own while they share one commit; a
 * batch rolled back keeps nothing; a transaction SQLite threw away fails
 * the whole batch. Without savepoints, refusals cost nothing but a call
 * that fails after writing spoils the batch, which then keeps nothing
 * and is run again with savepoints. Then the batch itself
 * (writer_batch), without a socket: an array of requests in, one commit,
 * a reply each, a failing request undone alone, a request without its
 * promotion refused alone, and a batch that cannot begin fails every
 * request. Then the writer process (forked, on its unix socket): visits,
 * claims and draws through it give the same answers and rows as the
 * rules called directly, a draw replays by request_id, and when the
 * writer is killed the workers' calls run in the calling process
 * instead; a request an hour ahead of the writer's clock runs at the
 * writer's time. Last, the writer starts the WAL over by itself once it
 * holds wal_restart_frames, and without that the WAL only grows.
 */
#include <signal.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "rules.h"
#include "writer.h"
#include "../tap.h"
#include "testdb.h"

static const char promo_json[] =
	"{\"id\": \"u-writer\", \"name\": \"unit\", \"time_zone\": \"Asia/Seoul\","
	" \"first_day\": \"2024-07-08\", \"last_day\": \"2024-07-10\","
	" \"grants\": {\"visit\": 2, \"inviter\": 1, \"invitee\": 1},"
	" \"invites\": {\"max_credited_per_inviter\": 30, \"invitee_new_within_hours\": 24},"
	" \"prizes\": [{\"id\": \"cup\", \"name\": \"a cup\", \"daily_stock\": 1000,"
	" \"probability\": 0.5}]}";

/* 2024-07-08 12:00 in Seoul */
static const int64_t NOW = 1720407600000LL;

static struct testdb tdb;
static struct ledger *l;

/* The single integer a query answers (-1 when no row); sql is a literal,
 * as the statement cache wants (db.h). */
static long long q(const char *sql)
{
	int64_t v = -1;
	int found;

	if (db_int(ledger_db(l), sql, "cannot query", &v, &found, "") != LD_OK)
		bail("%s", ledger_errmsg(l));
	return found ? v : -1;
}

/* True when no transaction is open on l: a read snapshot can begin. */
static int no_transaction(void)
{
	if (db_read_begin(ledger_db(l)) != LD_OK)
		return 0;
	db_read_end(ledger_db(l));
	return 1;
}

static void test_batch(const struct promo *p)
{
	struct visit_result vr;
	struct draw_result dr;
	enum rule_outcome o;

	is_int(ledger_batch_begin(l, 1), LD_OK, "a batch begins");
	is_int(rules_visit(l, p, "b1", NOW, &o, &vr), LD_OK, "a visit in the batch");
	ok(vr.granted && BALANCE(vr.bal) == 2, "is granted");
	is_int(rules_draw(l, p, "nobody", "rid-00000001", NOW, rules_rng_sodium, NULL, &o, &dr),
	       LD_OK, "a draw without tickets in the batch");
	is_int(o, RULE_NO_TICKETS, "is refused");
	is_int(rules_visit(l, p, "b2", NOW, &o, &vr), LD_OK, "a second visit in the batch");
	ok(ledger_batch_intact(l), "the batch's transaction is open");
	is_int(ledger_batch_end(l, 1), LD_OK, "the batch commits");
	is_int(q("SELECT count(*) FROM grants WHERE uid IN ('b1','b2')"), 2,
	       "both visits were kept, one commit for them");
	is_int(q("SELECT count(*) FROM balances WHERE uid = 'nobody'"), 0,
	       "the refused draw left nothing");
	ok(no_transaction(), "no transaction is left open");

	is_int(ledger_batch_begin(l, 1), LD_OK, "a batch that is rolled back");
	rules_visit(l, p, "b3", NOW, &o, &vr);
	is_int(ledger_batch_end(l, 0), LD_OK, "rolls back");
	is_int(q("SELECT count(*) FROM grants WHERE uid = 'b3'"), 0, "and kept nothing");

	/* SQLite rolls the whole transaction back on some errors (I/O, out
	 * of memory): then nothing of the batch may be reported done. */
	is_int(ledger_batch_begin(l, 1), LD_OK, "a batch whose transaction is lost");
	rules_visit(l, p, "b4", NOW, &o, &vr);
	db_script(ledger_db(l), "ROLLBACK", "cannot roll back");
	ok(!ledger_batch_intact(l), "is seen as lost");
	ok(rules_visit(l, p, "b5", NOW, &o, &vr) != LD_OK,
	   "a rule call after the loss fails instead of committing on its own");
	ok(ledger_batch_end(l, 1) != LD_OK, "and the batch's end fails");
	is_int(q("SELECT count(*) FROM grants WHERE uid IN ('b4','b5')"), 0, "nothing was kept");
	is_int(rules_visit(l, p, "b6", NOW, &o, &vr), LD_OK,
	       "outside a batch, rules commit as before");
	is_int(q("SELECT count(*) FROM grants WHERE uid = 'b6'"), 1, "and keep their rows");
}

/* A claim by "boom" fails after its visit and invite grants: the
 * invites row is refused by a trigger (an error the rules do not
 * foresee, as a full disk would be). */
static void boom_on(void)
{
	if (db_script(ledger_db(l),
		      "CREATE TRIGGER boom BEFORE INSERT ON invites WHEN NEW.invitee = 'boom'"
		      " BEGIN SELECT RAISE(ABORT, 'boom'); END",
		      "cannot make the trigger") != LD_OK)
		bail("%s", ledger_errmsg(l));
}

static void boom_off(void)
{
	db_script(ledger_db(l), "DROP TRIGGER boom", "cannot drop the trigger");
}

static void test_batch_fast(const struct promo *p)
{
	struct visit_result vr;
	struct claim_result cr;
	struct draw_result dr;
	enum rule_outcome o;
	char code[INVITE_CODE_LEN + 1];

	is_int(ledger_batch_begin(l, 0), LD_OK, "a batch without savepoints");
	is_int(rules_visit(l, p, "f1", NOW, &o, &vr), LD_OK, "a visit in it");
	rules_draw(l, p, "nobody", "rid-00000002", NOW, rules_rng_sodium, NULL, &o, &dr);
	is_int(o, RULE_NO_TICKETS, "a draw without tickets is refused");
	ok(!ledger_batch_spoiled(l), "a refusal (it wrote nothing) does not spoil the batch");
	is_int(ledger_batch_end(l, 1), LD_OK, "the batch commits");
	is_int(q("SELECT count(*) FROM grants WHERE uid = 'f1'"), 1, "and keeps the visit");

	if (rules_invite_code(l, p, "f1", NOW, NULL, code) != LD_OK)
		bail("no invite code: %s", ledger_errmsg(l));
	boom_on();
	is_int(ledger_batch_begin(l, 0), LD_OK, "a batch without savepoints with a failing call");
	rules_visit(l, p, "f2", NOW, &o, &vr);
	ok(rules_claim(l, p, "boom", code, NULL, NOW, &o, &cr) != LD_OK,
	   "the claim fails after it wrote");
	ok(ledger_batch_spoiled(l), "and spoils the batch");
	ok(ledger_batch_end(l, 1) != LD_OK, "which cannot commit");
	is_int(q("SELECT count(*) FROM grants WHERE uid IN ('f2', 'boom')"), 0,
	       "and kept nothing, also not the visit before the claim");
	is_int(ledger_batch_begin(l, 1), LD_OK, "the same batch with savepoints");
	rules_visit(l, p, "f2", NOW, &o, &vr);
	rules_claim(l, p, "boom", code, NULL, NOW, &o, &cr);
	ok(!ledger_batch_spoiled(l), "a savepoint undoes the failed claim alone");
	is_int(ledger_batch_end(l, 1), LD_OK, "the batch commits");
	is_int(q("SELECT count(*) FROM grants WHERE uid = 'f2'"), 1, "with the visit");
	is_int(q("SELECT count(*) FROM grants WHERE uid = 'boom'") +
		       q("SELECT count(*) FROM balances WHERE uid = 'boom'"),
	       0, "and nothing of the claim");
	boom_off();
}

/* A request for the batch, as a handler checks one in. */
static struct writer_request request(const struct promo *p, enum writer_op op, const char *uid,
				     const char *arg)
{
	struct writer_request q;

	if (writer_request_set(&q, op, p, uid, arg, NULL, NOW) != 0)
		bail("a request does not fit");
	return q;
}

static void test_engine(const struct promo *p)
{
	struct writer_request rq[5];
	const struct promo *ps[5] = { p, p, p, p, p };
	struct writer_reply a[5];
	char code[INVITE_CODE_LEN + 1];

	rq[0] = request(p, WRITER_VISIT, "e1", NULL);
	rq[1] = request(p, WRITER_VISIT, "e2", NULL);
	rq[2] = request(p, WRITER_DRAW, "nobody", "rid-00000100");
	rq[3] = request(p, WRITER_VISIT, "e1", NULL);
	rq[4] = request(p, WRITER_DRAW, "e2", "rid-00000101");
	is_int(writer_batch(l, rq, ps, a, 5), 1, "five requests run as one batch, which commits");
	ok(a[0].err == LD_OK && a[0].outcome == RULE_OK && a[0].r.visit.granted &&
		   BALANCE(a[0].r.visit.bal) == 2,
	   "a visit's reply: granted, 2 dice");
	ok(a[1].err == LD_OK && a[1].r.visit.granted, "another user's visit: granted");
	ok(a[2].err == LD_OK && a[2].outcome == RULE_NO_TICKETS,
	   "a draw without dice: refused, not an error");
	ok(a[3].err == LD_OK && !a[3].r.visit.granted && BALANCE(a[3].r.visit.bal) == 2,
	   "the first user's second visit sees the first, in the same batch: nothing granted");
	ok(a[4].err == LD_OK && a[4].outcome == RULE_OK && a[4].r.draw.id > 0 &&
		   BALANCE(a[4].r.draw.bal) == 1,
	   "a draw spends one of the dice granted before it");
	ok(a[4].r.draw.prize_id[0] ? a[4].r.draw.prize == 0 : a[4].r.draw.prize == -1,
	   "its prize index is into the promotion given");
	ok(a[0].magic == WRITER_MAGIC && a[4].magic == WRITER_MAGIC, "every reply is marked");
	is_int(q("SELECT count(*) FROM grants WHERE uid IN ('e1','e2')"), 2,
	       "both visits are in the ledger");
	is_int(q("SELECT count(*) FROM draws WHERE request_id = 'rid-00000101'"), 1,
	       "and the draw");

	/* A failing claim between two visits: the batch is run again with
	 * savepoints, and only the claim is undone. */
	if (rules_invite_code(l, p, "e1", NOW, NULL, code) != LD_OK)
		bail("no invite code: %s", ledger_errmsg(l));
	boom_on();
	rq[0] = request(p, WRITER_VISIT, "e3", NULL);
	rq[1] = request(p, WRITER_CLAIM, "boom", code);
	rq[2] = request(p, WRITER_VISIT, "e4", NULL);
	is_int(writer_batch(l, rq, ps, a, 3), 1, "a batch with a failing claim commits");
	ok(a[0].err == LD_OK && a[0].r.visit.granted && a[2].err == LD_OK && a[2].r.visit.granted,
	   "the visits on either side of it are granted");
	ok(a[1].err != LD_OK && strstr(a[1].errmsg, "boom") != NULL,
	   "the claim's reply is its error: %s", a[1].errmsg);
	is_int(q("SELECT count(*) FROM grants WHERE uid IN ('e3','e4')"), 2, "the visits are kept");
	is_int(q("SELECT count(*) FROM grants WHERE uid = 'boom'") +
		       q("SELECT count(*) FROM balances WHERE uid = 'boom'"),
	       0, "nothing of the claim is");
	boom_off();

	/* A request whose promotion the caller did not find. */
	ps[1] = NULL;
	rq[0] = request(p, WRITER_VISIT, "e5", NULL);
	rq[1] = request(p, WRITER_VISIT, "e6", NULL);
	is_int(writer_batch(l, rq, ps, a, 2), 1, "a request without its promotion");
	ok(a[0].err == LD_OK && a[0].r.visit.granted, "does not hold the others back");
	is_int(a[1].err, LD_ERR_NOTFOUND, "and is refused alone: %s", a[1].errmsg);
	is_int(q("SELECT count(*) FROM grants WHERE uid = 'e6'"), 0, "without a row");
	ps[1] = p;

	/* Another connection holds the write lock past the busy timeout:
	 * the batch cannot begin, and every request fails. */
	struct ledger_options lo = { .busy_timeout_ms = 50 };
	struct ledger *other;
	char err[256];
	if (ledger_open(tdb.path, &lo, &other, err, sizeof err) != LD_OK)
		bail("%s", err);
	if (db_script(ledger_db(l), "BEGIN IMMEDIATE", "cannot take the write lock") != LD_OK)
		bail("%s", ledger_errmsg(l));
	rq[0] = request(p, WRITER_VISIT, "e7", NULL);
	rq[1] = request(p, WRITER_DRAW, "nobody", "rid-00000102");
	is_int(writer_batch(other, rq, ps, a, 2), 0, "a batch that cannot take the lock fails");
	ok(a[0].err == LD_ERR_BUSY && a[1].err == LD_ERR_BUSY,
	   "and every reply says busy, a refusal's too (%d, %d)", a[0].err, a[1].err);
	db_script(ledger_db(l), "ROLLBACK", "cannot roll back");
	ledger_free(other);
	is_int(q("SELECT count(*) FROM grants WHERE uid = 'e7'"), 0, "nothing was kept");
}

static volatile sig_atomic_t stop;
static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static int served, largest, checkpoints;
/* A batch with a duration that cannot be is not counted as served. */
static void count(void *arg, size_t requests, int committed, int64_t us)
{
	(void)arg;
	if (committed && us >= 0 && us < 60 * 1000000)
		served += (int)requests;
	if ((int)requests > largest)
		largest = (int)requests;
}

/* Likewise a checkpoint. */
static void count_checkpoint(void *arg, int64_t us)
{
	(void)arg;
	if (us >= 0 && us < 60 * 1000000)
		checkpoints++;
}

/* What the writer process exits with. */
enum report { SERVED, LARGEST_BATCH, CHECKPOINTS };

/* The writer process: its own ledger, opened after the fork. Exits with
 * what report says (SERVED: the requests it committed). wal_frames < 0:
 * SQLite's automatic checkpoints; else own_checkpoints, and the writer's
 * wal_restart_frames (0: none at all). */
static pid_t start_writer(const char *sock, enum report report, int wal_frames)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	struct sigaction sa = { .sa_handler = on_term };
	struct ledger_options lo = { .own_checkpoints = wal_frames >= 0 };
	struct ledger *wl;
	char err[256];
	int fd;

	sigaction(SIGTERM, &sa, NULL);
	if (ledger_open(tdb.path, &lo, &wl, err, sizeof err) != LD_OK ||
	    (fd = writer_listen(sock, err, sizeof err)) < 0) {
		fprintf(stderr, "writer: %s\n", err);
		_exit(255);
	}
	struct writer_options wo = {
		.max_batch = 8,
		.on_batch = count,
		.wal_restart_frames = wal_frames > 0 ? wal_frames : 0,
		.on_checkpoint = count_checkpoint,
	};
	if (writer_serve(fd, wl, &wo, &stop) != 0)
		_exit(255);
	close(fd);
	ledger_free(wl);
	_exit(report == LARGEST_BATCH         ? largest
		      : report == CHECKPOINTS ? (checkpoints < 254 ? checkpoints : 254)
					      : served);
}

/* Waits until something accepts connections on sock. */
static void wait_listening(const char *sock)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", sock);
	for (int i = 0; i < 500; i++) {
		int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
		int up = connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0;
		close(fd);
		if (up)
			return;
		usleep(10000);
	}
	bail("the writer does not listen on '%s'", sock);
}

/* Stops the writer with SIGTERM; returns how many requests it served. */
static int stop_writer(pid_t pid)
{
	int status;

	kill(pid, SIGTERM);
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* One write through w (or here, without a writer), as a worker's handler
 * makes it: *o gets the outcome, a the reply. */
static enum ld_err call(struct writer_client *w, struct ledger *cl, const struct promo *p,
			enum writer_op op, const char *uid, const char *arg, const char *client,
			enum rule_outcome *o, struct writer_reply *a)
{
	struct writer_request rq;
	enum ld_err e;

	if (writer_request_set(&rq, op, p, uid, arg, client, NOW) != 0)
		bail("a request does not fit");
	e = writer_call(w, cl, p, &rq, a);
	*o = (enum rule_outcome)a->outcome;
	return e;
}

static enum ld_err visit(struct writer_client *w, const struct promo *p, const char *uid,
			 enum rule_outcome *o, struct visit_result *r)
{
	struct writer_reply a;
	enum ld_err e = call(w, l, p, WRITER_VISIT, uid, NULL, NULL, o, &a);

	*r = a.r.visit;
	return e;
}

static enum ld_err claim(struct writer_client *w, const struct promo *p, const char *uid,
			 const char *code, enum rule_outcome *o, struct claim_result *r)
{
	struct writer_reply a;
	enum ld_err e = call(w, l, p, WRITER_CLAIM, uid, code, "dev-1", o, &a);

	*r = a.r.claim;
	return e;
}

static enum ld_err draw(struct writer_client *w, const struct promo *p, const char *uid,
			const char *request_id, enum rule_outcome *o, struct draw_result *r)
{
	struct writer_reply a;
	enum ld_err e = call(w, l, p, WRITER_DRAW, uid, request_id, NULL, o, &a);

	*r = a.r.draw;
	return e;
}

static void test_process(const struct promo *p)
{
	struct visit_result vr;
	struct claim_result cr;
	struct draw_result dr, again;
	struct writer_client *w;
	char sock[320], code[INVITE_CODE_LEN + 1];
	enum rule_outcome o;
	int status;
	pid_t pid;

	ok(writer_socket_path(tdb.path, sock, sizeof sock) == 0, "the socket path fits");
	ok(strstr(sock, "t.db-writer") != NULL, "and lies next to the database");
	pid = start_writer(sock, SERVED, -1);
	wait_listening(sock);
	w = writer_client_new(sock, 5000);

	struct writer_reply a;
	is_int(call(w, l, p, WRITER_VISIT, "w1", NULL, NULL, &o, &a), LD_OK,
	       "a visit through the writer");
	ok(o == RULE_OK && a.r.visit.granted && BALANCE(a.r.visit.bal) == 2,
	   "is granted with 2 dice");
	is_int(q("SELECT count(*) FROM grants WHERE uid = 'w1' AND reason = 'visit'"), 1,
	       "and committed before the reply");
	is_int(a.cached, 0, "a writer without a cache leaves the cache to the caller");
	visit(w, p, "w1", &o, &vr);
	ok(o == RULE_OK && !vr.granted && BALANCE(vr.bal) == 2, "a second visit grants nothing");

	/* A uid longer than a request holds is never cut to fit: the
	 * request is refused (a handler answers 500: a token's uid fits). */
	char long_uid[TOKEN_UID_MAX + 12];
	struct writer_request lq;
	memset(long_uid, 'u', sizeof long_uid - 1);
	long_uid[sizeof long_uid - 1] = '\0';
	is_int(writer_request_set(&lq, WRITER_VISIT, p, long_uid, NULL, NULL, NOW), -1,
	       "a uid too long for a request is refused, not cut to 64 bytes");

	if (rules_invite_code(l, p, "w1", NOW, NULL, code) != LD_OK)
		bail("no invite code: %s", ledger_errmsg(l));
	is_int(claim(w, p, "w2", code, &o, &cr), LD_OK, "a claim through the writer");
	ok(o == RULE_OK && cr.inviter_granted && strcmp(cr.inviter, "w1") == 0,
	   "credits the inviter");
	is_int(cr.inviter_bal.granted, 3, "who now has 3 dice");
	claim(w, p, "w2", code, &o, &cr);
	is_int(o, RULE_ALREADY_CREDITED, "the same claim again is refused");

	is_int(draw(w, p, "w1", "rid-00000042", &o, &dr), LD_OK, "a draw through the writer");
	ok(o == RULE_OK && dr.id > 0 && !dr.replay && BALANCE(dr.bal) == 2, "spends one die");
	ok(!dr.prize_id[0] || promo_prize_find(p, dr.prize_id), "its prize is known by its id");
	draw(w, p, "w1", "rid-00000042", &o, &again);
	ok(again.replay && again.id == dr.id && strcmp(again.prize_id, dr.prize_id) == 0,
	   "the same request_id replays the draw");
	draw(w, p, "nobody", "rid-00000043", &o, &dr);
	is_int(o, RULE_NO_TICKETS, "a draw without dice is refused");
	is_int(stop_writer(pid), 7, "the writer ran all 7 calls; SIGTERM stops it cleanly");

	pid = start_writer(sock, SERVED, -1);
	wait_listening(sock);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	ok(access(sock, F_OK) == 0, "a killed writer leaves its socket file");
	is_int(visit(w, p, "w3", &o, &vr), LD_OK, "with the writer gone a visit still succeeds");
	ok(o == RULE_OK && vr.granted, "run in this process");
	is_int(q("SELECT count(*) FROM grants WHERE uid = 'w3'"), 1, "and committed");

	pid = start_writer(sock, SERVED, -1);
	wait_listening(sock);
	visit(w, p, "w4", &o, &vr);
	ok(o == RULE_OK && vr.granted, "a visit after the writer is back");
	is_int(stop_writer(pid), 1, "went through the new writer (it took over the stale socket)");

	/* A visit and a failing claim in one batch: the batch spoils without
	 * savepoints and is run again with them; the visit is kept. */
	if (rules_invite_code(l, p, "w1", NOW, NULL, code) != LD_OK)
		bail("no invite code: %s", ledger_errmsg(l));
	boom_on();
	pid = start_writer(sock, LARGEST_BATCH, -1);
	wait_listening(sock);
	kill(pid, SIGSTOP); /* both requests wait for it: one batch */
	pid_t kids[2];
	for (int k = 0; k < 2; k++) {
		if ((kids[k] = fork()) != 0)
			continue;
		struct ledger_options lo = { 0 };
		struct writer_client *kw = writer_client_new(sock, 5000);
		struct ledger *kl;
		char err[256];
		if (ledger_open(tdb.path, &lo, &kl, err, sizeof err) != LD_OK)
			_exit(3);
		struct writer_reply ka;
		enum ld_err e = k == 0 ? call(kw, kl, p, WRITER_VISIT, "w5", NULL, NULL, &o, &ka)
				       : call(kw, kl, p, WRITER_CLAIM, "boom", code, NULL, &o, &ka);
		writer_client_free(kw);
		ledger_free(kl);
		_exit(e == LD_OK ? 0 : 1);
	}
	usleep(200 * 1000);
	kill(pid, SIGCONT);
	for (int k = 0; k < 2; k++) {
		waitpid(kids[k], &status, 0);
		is_int(WIFEXITED(status) ? WEXITSTATUS(status) : -1, k,
		       k == 0 ? "the visit batched with a failing claim succeeds"
			      : "the failing claim gets an error");
	}
	is_int(stop_writer(pid), 2, "the writer ran them as one batch");
	is_int(q("SELECT count(*) FROM grants WHERE uid = 'w5'"), 1, "the visit is kept");
	is_int(q("SELECT count(*) FROM grants WHERE uid = 'boom'"), 0, "nothing of the claim is");
	boom_off();
	writer_client_free(w);
	unlink(sock);
}

/* A promotion whose days (in Seoul) run from yesterday to a month
 * ahead of the real clock: the writer's own clock is the real one. */
static struct promo *promo_of_today(void)
{
	char json[sizeof promo_json + 64], first[16], last[16];
	time_t now = time(NULL) + 9 * 3600, d0 = now - 86400, d1 = now + 30 * 86400;
	struct promo *p;
	struct tm tm;
	char err[256];

	strftime(first, sizeof first, "%Y-%m-%d", gmtime_r(&d0, &tm));
	strftime(last, sizeof last, "%Y-%m-%d", gmtime_r(&d1, &tm));
	snprintf(json, sizeof json, "%s", promo_json);
	memcpy(strstr(json, "u-writer"), "u-today1", 8);
	memcpy(strstr(json, "2024-07-08"), first, 10);
	memcpy(strstr(json, "2024-07-10"), last, 10);
	if (promo_parse(json, strlen(json), &p, err, sizeof err) != LD_OK)
		bail("%s", err);
	if (ledger_promo_store(l, p, ld_now_ms(), NULL, NULL) != LD_OK)
		bail("%s", ledger_errmsg(l));
	return p;
}

/* A worker's request whose instant is an hour past the writer's clock
 * runs at the writer's: a caller on the socket cannot take a rule into
 * the future (tomorrow's stock, a promotion not begun). */
static void test_clock(void)
{
	struct promo *p = promo_of_today();
	struct writer_client *w;
	struct writer_request rq;
	struct writer_reply a;
	int64_t before, after, at;
	char sock[320];
	pid_t pid;

	writer_socket_path(tdb.path, sock, sizeof sock);
	pid = start_writer(sock, SERVED, -1);
	wait_listening(sock);
	w = writer_client_new(sock, 5000);
	before = ld_now_ms();
	if (writer_request_set(&rq, WRITER_VISIT, p, "future", NULL, NULL, before + 3600 * 1000) !=
	    0)
		bail("a request does not fit");
	is_int(writer_call(w, l, p, &rq, &a), LD_OK, "a visit an hour ahead of the writer's clock");
	after = ld_now_ms();
	ok(a.outcome == RULE_OK && a.r.visit.granted, "is granted");
	at = q("SELECT created_at FROM grants WHERE uid = 'future'");
	ok(at >= before && at <= after,
	   "at the writer's time, not the caller's (%lld ms after the call began)",
	   (long long)(at - before));
	is_int(stop_writer(pid), 1, "it went through the writer");
	writer_client_free(w);
	promo_free(p);
	unlink(sock);
}

/* The WAL's size in frames of 4 KB pages, from its file. */
static long wal_file_frames(void)
{
	char path[320];
	struct stat st;

	snprintf(path, sizeof path, "%s-wal", tdb.path);
	return stat(path, &st) == 0 && st.st_size > 32 ? (long)((st.st_size - 32) / (4096 + 24))
						       : 0;
}

/* n visits of fresh users through a writer started with wal_frames (as
 * start_writer); returns the checkpoints it ran. The WAL is emptied
 * first, so its file's size afterwards is the most frames it held. */
static int visits_through(const struct promo *p, const char *sock, int wal_frames, const char *tag,
			  int n)
{
	struct writer_client *w;
	struct visit_result vr;
	enum rule_outcome o;
	char uid[32];
	int granted = 0;
	pid_t pid;

	if (db_script(ledger_db(l), "PRAGMA wal_checkpoint(TRUNCATE)", "cannot empty the WAL") !=
	    LD_OK)
		bail("%s", ledger_errmsg(l));
	pid = start_writer(sock, CHECKPOINTS, wal_frames);
	wait_listening(sock);
	w = writer_client_new(sock, 5000);
	for (int i = 0; i < n; i++) {
		snprintf(uid, sizeof uid, "%s-%d", tag, i);
		if (visit(w, p, uid, &o, &vr) == LD_OK && vr.granted)
			granted++;
	}
	writer_client_free(w);
	is_int(granted, n, "every visit is granted");
	return stop_writer(pid);
}

static void test_wal_restart(const struct promo *p)
{
	char sock[320];
	long frames;
	int n;

	writer_socket_path(tdb.path, sock, sizeof sock);
	n = visits_through(p, sock, 0, "grow", 400);
	frames = wal_file_frames();
	is_int(n, 0, "a writer with own_checkpoints and no wal_restart_frames checkpoints never");
	ok(frames > 1000, "and its WAL grows past SQLite's automatic checkpoint (%ld frames)",
	   frames);
	is_int(q("SELECT count(*) FROM grants WHERE uid LIKE 'grow-%'"), 400, "all committed");

	n = visits_through(p, sock, 64, "wrap", 400);
	frames = wal_file_frames();
	ok(n >= 10, "with wal_restart_frames 64 the writer checkpoints between batches (%d times)",
	   n);
	ok(frames >= 64 && frames < 96,
	   "and starts the WAL over: it never held more than a batch past 64 frames (%ld)", frames);
	is_int(q("SELECT count(*) FROM grants WHERE uid LIKE 'wrap-%'"), 400, "all committed");
	is_int(ledger_sync(l), LD_OK,
	       "ledger_sync flushes the database file (the checkpointer's, after each pass)");
	unlink(sock);
}

int main(void)
{
	struct promo *p;
	char err[256];

	if (sodium_init() < 0)
		bail("cannot initialise libsodium");
	testdb_open(&tdb, "writer");
	l = tdb.ledger;
	if (promo_parse(promo_json, strlen(promo_json), &p, err, sizeof err) != LD_OK)
		bail("%s", err);
	if (ledger_promo_store(l, p, NOW, NULL, NULL) != LD_OK)
		bail("%s", ledger_errmsg(l));
	test_batch(p);
	test_batch_fast(p);
	test_engine(p);
	test_process(p);
	test_clock();
	test_wal_restart(p);
	promo_free(p);
	testdb_remove(&tdb);
	return done_testing();
}
