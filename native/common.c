// SPDX-License-Identifier: GPL-2.0
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

int fail(const char *fmt, ...)
{
	va_list ap;

	fputs("scx-slo-loader: error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

int parse_u64(const char *s, __u64 *out)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || *s == '-')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

int check_sched_ext_kernel(void)
{
	if (access(SCX_SYSFS "/state", F_OK))
		return fail("this kernel has no sched_ext (%s/state missing): needs Linux >= 6.12 "
			    "with CONFIG_SCHED_CLASS_EXT=y; the node keeps its stock scheduler",
			    SCX_SYSFS);
	return 0;
}

int read_text(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return -1;
	n = fread(buf, 1, size - 1, f);
	fclose(f);
	buf[n] = 0;
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = 0;
	return 0;
}

/* Name of the attached scheduler, "" when none. */
int read_ops_name(char *buf, size_t size)
{
	char state[32];

	buf[0] = 0;
	if (read_text(SCX_SYSFS "/state", state, sizeof(state)))
		return -1;
	if (strcmp(state, "enabled") && strcmp(state, "enabling"))
		return 0;
	if (read_text(SCX_SYSFS "/root/ops", buf, size))
		buf[0] = 0;
	return 0;
}

int pin_exists(const char *pin_dir, const char *name)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", pin_dir, name);
	return access(path, F_OK) == 0;
}

void unlink_pin(const char *pin_dir, const char *name)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", pin_dir, name);
	unlink(path);
}

void purge_pin_dir(const char *pin_dir)
{
	/* Every pin, whichever maps the build that pinned them has. */
	DIR *dir = opendir(pin_dir);
	struct dirent *e;

	while (dir && (e = readdir(dir)))
		if (e->d_name[0] != '.')
			unlink_pin(pin_dir, e->d_name);
	if (dir)
		closedir(dir);
	rmdir(pin_dir);
}

int observer_links_pinned(const char *pin_dir)
{
	DIR *dir = opendir(pin_dir);
	struct dirent *e;
	int n = 0;

	while (dir && (e = readdir(dir)))
		if (!strncmp(e->d_name, OBSERVE_LINK_PREFIX, strlen(OBSERVE_LINK_PREFIX)))
			n++;
	if (dir)
		closedir(dir);
	return n;
}

int ensure_dir(const char *dir)
{
	if (mkdir(dir, 0700) && errno != EEXIST)
		return -1;
	return 0;
}

int open_pinned_map(const char *pin_dir, const char *name)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", pin_dir, name);
	return bpf_obj_get(path);
}

int open_pinned_maps(const char *pin_dir, struct pinned_maps *m)
{
	m->slo = open_pinned_map(pin_dir, "slo_map");
	m->stats = open_pinned_map(pin_dir, "stats_map");
	m->control = open_pinned_map(pin_dir, "control_map");
	m->counters = open_pinned_map(pin_dir, "counters_map");
	m->exit = open_pinned_map(pin_dir, "exit_map");
	m->events = open_pinned_map(pin_dir, "miss_events");
	m->offenders = open_pinned_map(pin_dir, "offenders");
	if (m->slo < 0 || m->stats < 0 || m->control < 0 || m->counters < 0 || m->events < 0 ||
	    (m->exit < 0 && m->offenders < 0)) {
		close_pinned_maps(m);
		return -1;
	}
	return 0;
}

void close_pinned_maps(struct pinned_maps *m)
{
	int *fds[] = { &m->slo,	 &m->stats,  &m->control,  &m->counters,
		       &m->exit, &m->events, &m->offenders };
	size_t i;

	for (i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

int nr_possible_cpus(void)
{
	static int n;

	if (!n)
		n = libbpf_num_possible_cpus();
	return n;
}

void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}
