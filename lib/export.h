/*
 * export.h - reports for people outside the service, as RFC 4180 CSV
 * (a header row, fields quoted when they hold a comma, a quote, CR or LF,
 * quotes doubled, CRLF after every record).
 */
#ifndef LD_EXPORT_H
#define LD_EXPORT_H

#include <stdio.h>
#include "ledger.h"
#include "promo.h"

/* Writes one CSV field (without separator) to out. */
void export_csv_field(FILE *out, const char *s);

/*
 * The winners of promotion p, in draw order, for the prize vendor:
 * user, prize_id, prize_name, day, time (local ISO-8601), draw_id,
 * delivery (the state of the reward.issue event: pending, delivered,
 * dead, revoked, or "missing"). day (may be NULL) keeps one local day
 * ("YYYY-MM-DD"). Reads the ledger in pages of draws, so no read
 * snapshot is held for the whole export. *rows gets the number written.
 * Returns LD_OK, a database error, or LD_ERR_IO when out fails (the
 * message on the ledger, as for the others).
 */
enum ld_err export_winners(struct ledger *l, const struct promo *p, const char *day, FILE *out,
			   int64_t *rows);

#endif
