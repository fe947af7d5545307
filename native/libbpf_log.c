// SPDX-License-Identifier: GPL-2.0
/* libbpf's messages, the verifier log among them: kept in memory and shown only when a load fails. */
#include <stdarg.h>
#include <stdio.h>

#include "common.h"

static char kept[1 << 20];
static size_t kept_len;
static bool show_debug;

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_DEBUG && !show_debug)
		return 0;
	if (kept_len < sizeof(kept) - 1) {
		int n = vsnprintf(kept + kept_len, sizeof(kept) - kept_len, fmt, args);

		if (n > 0)
			kept_len += (size_t)n;
		if (kept_len >= sizeof(kept))
			kept_len = sizeof(kept) - 1;
	}
	return 0;
}

void show_libbpf_debug(bool on)
{
	show_debug = on;
}

void keep_libbpf_log(void)
{
	kept_len = 0;
	libbpf_set_print(libbpf_print);
}

const char *kept_libbpf_log(void)
{
	return kept_len ? kept : "(no log)\n";
}
