// SPDX-License-Identifier: GPL-2.0
/* The loader's status object: sched_ext's state, the pins, the scheduler's control and exit maps,
 * the observer's links and the layout (for `status` and serve's `status`). */
#include <string.h>
#include <unistd.h>

#include "common.h"

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
