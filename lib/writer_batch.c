/*
 * writer_batch.c - group commit's batch: requests run as one transaction
 * (see writer.h). No sockets: the server and the client call this.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules_pg.h"
#include "writer.h"

int writer_request_set(struct writer_request *q, enum writer_op op, const struct promo *p,
		       const char *uid, const char *arg, const char *client, int64_t now_ms)
{
	memset(q, 0, sizeof *q); /* padding too: it is sent as it is */
	q->magic = WRITER_MAGIC;
	q->op = op;
	q->now_ms = now_ms;
	q->has_client = client != NULL;
	if (ld_fmt(q->promo, sizeof q->promo, "%s", p->id) != 0 ||
	    ld_fmt(q->uid, sizeof q->uid, "%s", uid) != 0 ||
	    ld_fmt(q->arg, sizeof q->arg, "%s", arg ? arg : "") != 0 ||
	    ld_fmt(q->client, sizeof q->client, "%s", client ? client : "") != 0)
		return -1;
	return 0;
}

enum ld_err writer_run(struct ledger *l, const struct promo *p, const struct writer_request *q,
		       struct writer_reply *a)
{
	const char *client = q->has_client ? q->client : NULL;
	enum rule_outcome o = RULE_OK;
	enum ld_err e;

	memset(a, 0, sizeof *a);
	a->magic = WRITER_MAGIC;
	switch (q->op) {
	case WRITER_VISIT: e = rules_visit(l, p, q->uid, q->now_ms, &o, &a->r.visit); break;
	case WRITER_CLAIM:
		e = rules_claim(l, p, q->uid, q->arg, client, q->now_ms, &o, &a->r.claim);
		break;
	case WRITER_DRAW:
		e = rules_draw(l, p, q->uid, q->arg, q->now_ms, rules_rng_sodium, NULL, &o,
			       &a->r.draw);
		break;
	default: e = db_error(ledger_db(l), LD_ERR_INVALID, "writer: unknown operation");
	}
	a->err = e;
	a->outcome = o;
	if (e != LD_OK)
		snprintf(a->errmsg, sizeof a->errmsg, "%s", ledger_errmsg(l));
	return e;
}

/* Runs q with p inside the batch's transaction; a gets its reply. */
static void run_one(struct ledger *l, const struct writer_request *q, const struct promo *p,
		    struct writer_reply *a)
{
	if (p) {
		writer_run(l, p, q, a);
		return;
	}
	memset(a, 0, sizeof *a);
	a->magic = WRITER_MAGIC;
	a->err = LD_ERR_NOTFOUND;
	snprintf(a->errmsg, sizeof a->errmsg, "writer: no promotion '%s'", q->promo);
}

/*
 * On PostgreSQL, the whole batch in one pipeline (rules_pg_batch): one
 * round trip to the server instead of one per request. Returns 1 when it
 * committed, with every reply filled; 0 when it did not, with nothing
 * kept (the caller runs the batch the usual way).
 */
static int batch_pipelined(struct ledger *l, const struct writer_request *q,
			   const struct promo *const *promos, struct writer_reply *a, size_t n)
{
	static const enum rules_pg_op ops[] = {
		[WRITER_VISIT] = RULES_PG_VISIT,
		[WRITER_CLAIM] = RULES_PG_CLAIM,
		[WRITER_DRAW] = RULES_PG_DRAW,
	};
	struct rules_pg_call *calls;
	struct rules_pg_answer *answers;
	int ok;

	for (size_t i = 0; i < n; i++)
		if (q[i].op < WRITER_VISIT || q[i].op > WRITER_DRAW)
			return 0;
	calls = xcalloc(n, sizeof *calls);
	answers = xcalloc(n, sizeof *answers);
	for (size_t i = 0; i < n; i++) {
		calls[i] = (struct rules_pg_call){
			.op = ops[q[i].op],
			.p = promos[i],
			.uid = q[i].uid,
			.arg = q[i].arg,
			.client = q[i].has_client ? q[i].client : NULL,
			.now_ms = q[i].now_ms,
			.rand = q[i].op == WRITER_DRAW ? rules_rng_sodium(NULL) : 0,
		};
	}
	ok = rules_pg_batch(l, n, calls, answers) == LD_OK;
	for (size_t i = 0; ok && i < n; i++) {
		if (!promos[i]) {
			run_one(l, &q[i], NULL, &a[i]);
			continue;
		}
		memset(&a[i], 0, sizeof a[i]);
		a[i].magic = WRITER_MAGIC;
		a[i].outcome = answers[i].outcome;
		switch (q[i].op) {
		case WRITER_VISIT: a[i].r.visit = answers[i].visit; break;
		case WRITER_CLAIM: a[i].r.claim = answers[i].claim; break;
		case WRITER_DRAW: a[i].r.draw = answers[i].draw; break;
		}
	}
	free(calls);
	free(answers);
	return ok;
}

int writer_batch(struct ledger *l, const struct writer_request *q,
		 const struct promo *const *promos, struct writer_reply *a, size_t n)
{
	enum ld_err e;
	int savepoints = 0, failed;

	if (db_can_pipe(ledger_db(l))) {
		if (batch_pipelined(l, q, promos, a, n))
			return 1;
		savepoints = 1; /* one request at a time, each undone alone */
	}
again:
	e = ledger_batch_begin(l, savepoints);
	failed = 0;
	for (size_t i = 0; i < n; i++) {
		if (e == LD_OK && !(failed && !savepoints)) {
			run_one(l, &q[i], promos[i], &a[i]);
			failed |= a[i].err != LD_OK;
		} else {
			memset(&a[i], 0, sizeof a[i]); /* not run: the error below */
			a[i].magic = WRITER_MAGIC;
		}
	}
	/* Without savepoints a failed request may have left writes it could
	 * not undo: all over again with them. */
	if (e == LD_OK && !savepoints && (failed || ledger_batch_spoiled(l))) {
		ledger_batch_end(l, 0);
		savepoints = 1;
		goto again;
	}
	if (e == LD_OK)
		e = ledger_batch_end(l, 1);
	if (e == LD_OK)
		return 1;
	for (size_t i = 0; i < n; i++)
		if (a[i].err == LD_OK) {
			memset(&a[i].r, 0, sizeof a[i].r);
			a[i].outcome = RULE_OK;
			a[i].err = e;
			snprintf(a[i].errmsg, sizeof a[i].errmsg, "%s", ledger_errmsg(l));
		}
	return 0;
}
