/*
 * cmd_secrets.c - secrets [--force]: makes the secret files the config
 * names ("token_secret_file", "signing_secret_file"), readable by the
 * service's group and nobody else.
 */
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "token.h"

/* The group the service runs as (dist/luckydice.sysusers). */
#define SERVICE_GROUP "luckydice"

static int secrets_run(struct ctl *c, const struct ctl_call *call)
{
	const char *named[3] = { c->cfg.token_secret_file, c->cfg.signing_secret_file,
				 c->cfg.console_secret_file };
	const char *files[3];
	int n = 0, exists = 0;
	int force = ctl_flag(call, "force"), missing = ctl_flag(call, "missing");
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;
	struct passwd *pw;
	struct group *gr;
	char owner[160], err[600];

	/* each file once, in that order */
	for (int i = 0; i < 3; i++) {
		int seen = !named[i];
		for (int j = 0; j < n && !seen; j++)
			seen = strcmp(files[j], named[i]) == 0;
		if (!seen)
			files[n++] = named[i];
	}
	/* root makes them root:luckydice, so the service reads them and only
	 * root changes them; anyone else gets their own */
	if (geteuid() == 0 && (gr = getgrnam(SERVICE_GROUP))) {
		uid = 0;
		gid = gr->gr_gid;
		snprintf(owner, sizeof owner, "root:%s", SERVICE_GROUP);
	} else {
		pw = getpwuid(geteuid());
		gr = getgrgid(getegid());
		snprintf(owner, sizeof owner, "%s:%s", pw ? pw->pw_name : "?",
			 gr ? gr->gr_name : "?");
	}
	if (force && missing)
		ctl_usage_error(call, "--force and --missing exclude each other");
	/* --missing: the files not there yet (a secret a new version added),
	 * the others kept as they are */
	if (missing) {
		int k = 0;
		for (int i = 0; i < n; i++) {
			if (access(files[i], F_OK) == 0)
				printf("kept '%s'\n", files[i]);
			else
				files[k++] = files[i];
		}
		n = k;
	}
	if (!force) {
		for (int i = 0; i < n; i++)
			if (access(files[i], F_OK) == 0) {
				ld_log(LOG_ERR, "error: secret file '%s' exists", files[i]);
				exists = 1;
			}
		if (exists) {
			ld_log(LOG_ERR,
			       "nothing written (--missing writes only those not there;"
			       " --force replaces them: every token signed with the old one stops"
			       " working)");
			return CTL_EXIT_PROBLEM;
		}
	}
	for (int i = 0; i < n; i++) {
		if (token_secret_create(files[i], force, uid, gid, err, sizeof err) != LD_OK)
			ctl_die("%s", err);
		printf("wrote '%s': %d random bytes in base64, mode 0640, %s\n", files[i],
		       TOKEN_SECRET_BYTES, owner);
	}
	return 0;
}

/* clang-format off */
const struct ctl_cmd ctl_cmds_secrets[] = {
	{ "secrets", NULL, secrets_run, "", 0, 0, 0,
	  "make the secret files the config names (mode 0640, root:" SERVICE_GROUP ")",
	  "Writes 32 random bytes (libsodium), in base64, to \"token_secret_file\" and,\n"
	  "when the config names them, \"signing_secret_file\" and \"console_secret_file\":\n"
	  "each file mode 0640, owned by root:" SERVICE_GROUP " when run as root and that\n"
	  "group exists, else by the caller. Refuses to overwrite an existing file\n"
	  "(writing none) unless --missing, which writes only the files not there yet\n"
	  "and keeps the others (after an upgrade that added a secret), or --force,\n"
	  "which replaces them: a new token secret ends every token issued, a new\n"
	  "signing secret must reach the services that check the outbox's signatures,\n"
	  "a new console secret ends every operator token and console session.",
	  "0 written; 1 a file exists (nothing written); 2 cannot run (usage, config,\n"
	  "cannot write)",
	  { { "force", NULL, "replace existing files", 0 },
	    { "missing", NULL, "write only the files not there yet, keep the others", 0 },
	    { NULL } } },
	{ NULL },
};
/* clang-format on */
