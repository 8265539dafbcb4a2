/*
 * args.c - the one parser of luckydicectl's command lines. Every command
 * describes its options in its table entry (struct ctl_cmd); this file
 * turns them into getopt_long options, collects the operands in order
 * (options may come before, between or after them; "--" ends the
 * options), checks the counts and the required options, and prints the
 * command's help. A command's run() reads what was given through
 * ctl_flag(), ctl_value() and ctl_number().
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

#define OPT_BASE   256 /* option i of a command: OPT_BASE + i */
#define OPT_CONFIG (OPT_BASE + CTL_MAX_OPTS)

static int nopts(const struct ctl_cmd *cmd)
{
	int n = 0;

	while (n < CTL_MAX_OPTS && cmd->opts[n].name)
		n++;
	return n;
}

/* The index of option name in the call's command; a name the command does
 * not declare is a mistake in the program, not in its use. */
static int opt_index(const struct ctl_call *call, const char *name)
{
	for (int i = 0; i < nopts(call->cmd); i++)
		if (strcmp(call->cmd->opts[i].name, name) == 0)
			return i;
	ld_log(LOG_ERR, "luckydicectl: internal error: '%s' has no option --%s", call->cmd->group,
	       name);
	abort();
}

void ctl_synopsis(const struct ctl_cmd *cmd, FILE *f)
{
	fprintf(f, "luckydicectl %s", cmd->group);
	if (cmd->name)
		fprintf(f, " %s", cmd->name);
	if (cmd->operands && *cmd->operands)
		fprintf(f, " %s", cmd->operands);
	for (int i = 0; i < nopts(cmd); i++) {
		const struct ctl_opt *o = &cmd->opts[i];
		fprintf(f, " %s--%s%s%s%s", o->required ? "" : "[", o->name, o->arg ? " " : "",
			o->arg ? o->arg : "", o->required ? "" : "]");
	}
}

/* One option line of a help: "  --name ARG   help". */
static void opt_line(FILE *f, const char *name, const char *arg, const char *help)
{
	int w = fprintf(f, "  %s%s%s", name, arg ? " " : "", arg ? arg : "");

	fprintf(f, "%*s%s\n", w < 25 ? 25 - w : 1, "", help);
}

void ctl_config_help(FILE *f)
{
	opt_line(f, "--config", "FILE", "the config file (default: $LUCKYDICE_CONFIG if set,");
	fprintf(f, "%25selse %s)\n", "", config_installed_path());
}

void ctl_cmd_help(const struct ctl_cmd *cmd, FILE *f)
{
	fputs("usage: ", f);
	ctl_synopsis(cmd, f);
	fprintf(f, "\n\n%s\n\noptions:\n", cmd->help);
	for (int i = 0; i < nopts(cmd); i++) {
		char name[64];
		snprintf(name, sizeof name, "--%s", cmd->opts[i].name);
		opt_line(f, name, cmd->opts[i].arg, cmd->opts[i].help);
	}
	if (cmd->no_config)
		opt_line(f, "--config", "FILE", "accepted, not read: this command needs no config");
	else
		ctl_config_help(f);
	opt_line(f, "-h, --help", NULL, "print this help and exit");
	fprintf(f, "\nexit status: %s\n",
		cmd->exit ? cmd->exit : "0 done; 2 cannot run (usage, config, database)");
}

void ctl_usage_error(const struct ctl_call *call, const char *fmt, ...)
{
	char msg[LOG_LINE_MAX], *synopsis = NULL;
	size_t len = 0;
	va_list ap;
	FILE *f;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	ld_log(LOG_ERR, "error: %s", msg);
	if ((f = open_memstream(&synopsis, &len))) {
		ctl_synopsis(call->cmd, f);
		if (fclose(f) == 0)
			ld_log(LOG_ERR, "usage: %s", synopsis);
		free(synopsis);
	}
	ld_log(LOG_ERR, "(luckydicectl %s%s%s --help for more)", call->cmd->group,
	       call->cmd->name ? " " : "", call->cmd->name ? call->cmd->name : "");
	exit(CTL_EXIT_USAGE);
}

int ctl_flag(const struct ctl_call *call, const char *name)
{
	return call->val[opt_index(call, name)] != NULL;
}

const char *ctl_value(const struct ctl_call *call, const char *name)
{
	return call->val[opt_index(call, name)];
}

long long ctl_number(const struct ctl_call *call, const char *name, long long min, long long max,
		     long long def)
{
	const char *s = ctl_value(call, name);
	long long v;
	char *end;

	if (!s)
		return def;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		ctl_die("--%s: '%s' is not a number from %lld to %lld", name, s, min, max);
	return v;
}

double ctl_real(const struct ctl_call *call, const char *name, double min, double max, double def)
{
	const char *s = ctl_value(call, name);
	double v;
	char *end;

	if (!s)
		return def;
	v = strtod(s, &end);
	if (end == s || *end || !(v >= min && v <= max))
		ctl_die("--%s: '%s' is not a number from %g to %g", name, s, min, max);
	return v;
}

int ctl_run(struct ctl *c, const struct ctl_cmd *cmd, int argc, char **argv)
{
	struct option longs[CTL_MAX_OPTS + 3];
	struct ctl_call call;
	char err[512];
	int n = nopts(cmd), k = 0, ch, rc;

	memset(&call, 0, sizeof call);
	call.cmd = cmd;
	call.argv = xcalloc((size_t)argc + 1, sizeof *call.argv);
	for (int i = 0; i < n; i++)
		longs[k++] = (struct option){ cmd->opts[i].name,
					      cmd->opts[i].arg ? required_argument : no_argument,
					      NULL, OPT_BASE + i };
	longs[k++] = (struct option){ "config", required_argument, NULL, OPT_CONFIG };
	longs[k++] = (struct option){ "help", no_argument, NULL, 'h' };
	longs[k] = (struct option){ NULL, 0, NULL, 0 };

	/* "-": operands come back in order as 1, whatever POSIXLY_CORRECT
	 * says; ":": errors are ours to word. optind 0 starts getopt over. */
	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "-:h", longs, NULL)) != -1) {
		switch (ch) {
		case 1: call.argv[call.argc++] = optarg; break;
		case 'h': ctl_cmd_help(cmd, stdout); exit(0);
		case OPT_CONFIG: c->config_path = optarg; break;
		case ':': ctl_usage_error(&call, "option '%s' needs an argument", argv[optind - 1]);
		case '?':
			if (optopt > 0 && optopt < OPT_BASE)
				ctl_usage_error(&call, "unknown option '-%c'", optopt);
			ctl_usage_error(&call, "unknown option '%s'", argv[optind - 1]);
		default: call.val[ch - OPT_BASE] = optarg ? optarg : "";
		}
	}
	while (optind < argc) /* after "--" */
		call.argv[call.argc++] = argv[optind++];
	for (int i = 0; i < n; i++)
		if (cmd->opts[i].required && !call.val[i])
			ctl_usage_error(&call, "--%s is required", cmd->opts[i].name);
	if (call.argc < cmd->min_args)
		ctl_usage_error(&call, "missing arguments: expected %s", cmd->operands);
	if (cmd->max_args >= 0 && call.argc > cmd->max_args)
		ctl_usage_error(&call, "unexpected argument '%s'", call.argv[cmd->max_args]);
	if (!cmd->no_config) {
		if (!c->config_path)
			c->config_path = config_default_path();
		switch (config_load(c->config_path, &c->cfg, err, sizeof err)) {
		case LD_OK: break;
		case LD_ERR_IO:
			ctl_die("%s (--config FILE or $LUCKYDICE_CONFIG names the config)", err);
		default: ctl_die("%s", err);
		}
	}
	rc = cmd->run(c, &call);
	free(call.argv);
	return rc;
}
