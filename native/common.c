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

static const char *exit_kind_name(__s64 kind)
{
	switch (kind) {
	case 0: return "none";
	case 1: return "done";
	case 64: return "unregistered";
	case 65: return "unregistered_bpf";
	case 66: return "unregistered_kernel";
	case 67: return "sysrq";
	case 1024: return "error";
	case 1025: return "error_bpf";
	case 1026: return "error_stall";
	default: return "other";
	}
}

void write_status_fields(FILE *f, const char *pin_dir, const struct pinned_maps *m)
{
	char state[32] = "", ops[128] = "", seq[32] = "0";
	int has_scx = access(SCX_SYSFS "/state", F_OK) == 0;
	__u32 zero = 0;

	if (has_scx) {
		read_text(SCX_SYSFS "/state", state, sizeof(state));
		read_ops_name(ops, sizeof(ops));
		read_text(SCX_SYSFS "/enable_seq", seq, sizeof(seq));
	}
	fprintf(f, "\"sched_ext\":%s,\"state\":", has_scx ? "true" : "false");
	json_string(f, has_scx ? state : "unsupported");
	fprintf(f, ",\"ops\":");
	if (ops[0])
		json_string(f, ops);
	else
		fputs("null", f);
	fprintf(f, ",\"attached\":%s,\"link_pinned\":%s,\"maps_pinned\":%s,\"enable_seq\":%s",
		!strcmp(ops, SCX_SLO_NAME) ? "true" : "false",
		pin_exists(pin_dir, "link") ? "true" : "false", m && m->slo >= 0 ? "true" : "false",
		seq[0] ? seq : "0");
	fprintf(f, ",\"observer_links\":%d", observer_links_pinned(pin_dir));
	if (m && m->control >= 0) {
		struct slo_control ctl = {};

		bpf_map_lookup_elem(m->control, &zero, &ctl);
		fprintf(f, ",\"gen\":%llu,\"nr_attach\":%llu", (unsigned long long)ctl.gen,
			(unsigned long long)ctl.nr_attach);
	}
	if (m && m->exit >= 0) {
		struct slo_exit ex = {};

		bpf_map_lookup_elem(m->exit, &zero, &ex);
		ex.reason[sizeof(ex.reason) - 1] = 0;
		ex.msg[sizeof(ex.msg) - 1] = 0;
		fprintf(f, ",\"exit\":{\"kind\":%lld,\"kind_name\":", (long long)ex.kind);
		json_string(f, exit_kind_name(ex.kind));
		fprintf(f, ",\"code\":%lld,\"reason\":", (long long)ex.exit_code);
		json_string(f, ex.reason);
		fputs(",\"msg\":", f);
		json_string(f, ex.msg);
		fputc('}', f);
	}
}

int cmd_status(const char *pin_dir, const char *obj_path)
{
	struct pinned_maps m;
	int have = open_pinned_maps(pin_dir, &m) == 0;

	fputc('{', stdout);
	write_status_fields(stdout, pin_dir, have ? &m : NULL);
	write_layout_status(stdout, pin_dir, obj_path);
	fputs("}\n", stdout);
	if (have)
		close_pinned_maps(&m);
	return 0;
}
