/* fuzz-config: config_parse on any bytes. */
#include <stdlib.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct ld_config cfg;
	char err[256];

	if (config_parse((const char *)data, size, "/etc/luckydice/luckydice.json", &cfg, err,
			 sizeof err) != LD_OK) {
		if (cfg.db || !err[0])
			abort();
		return 0;
	}
	/* db: a file made absolute, or a PostgreSQL connection string as given */
	if (!cfg.db || (cfg.db[0] != '/' && !ld_is_conninfo(cfg.db)) || !cfg.token_secret_file)
		abort();
	config_release(&cfg);
	return 0;
}
