/* SPDX-License-Identifier: GPL-2.0 */
/* Shared by the loader's commands: sysfs/bpffs helpers, maps by pin, and JSON output. */
#ifndef SCX_SLO_NATIVE_COMMON_H
#define SCX_SLO_NATIVE_COMMON_H

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <linux/types.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "../bpf/scx_slo.h"

#define DEFAULT_PIN_DIR "/sys/fs/bpf/scx_slo"
#define DEFAULT_OBSERVE_PIN_DIR "/sys/fs/bpf/scx_slo_observe"
/* The observer's links are pinned as link_<program> (observe.c). */
#define OBSERVE_LINK_PREFIX "link_"
#define NSEC_PER_MSEC 1000000ULL
#define SCX_SYSFS "/sys/kernel/sched_ext"

int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int parse_u64(const char *s, __u64 *out);
int check_sched_ext_kernel(void);
int read_text(const char *path, char *buf, size_t size);
int read_ops_name(char *buf, size_t size);
int pin_exists(const char *pin_dir, const char *name);
void unlink_pin(const char *pin_dir, const char *name);
/* Unpins everything in pin_dir and removes the folder. */
void purge_pin_dir(const char *pin_dir);
int ensure_dir(const char *dir);
int open_pinned_map(const char *pin_dir, const char *name);
void json_string(FILE *f, const char *s);

/*
 * The pinned maps user space works with; fds are -1 until opened. exit_map is the scheduler's
 * only and offenders the observer's only: either may be missing.
 */
struct pinned_maps {
	int slo, stats, control, counters, exit, events, offenders;
};
#define PINNED_MAPS_INIT { -1, -1, -1, -1, -1, -1, -1 }
int open_pinned_maps(const char *pin_dir, struct pinned_maps *m);
void close_pinned_maps(struct pinned_maps *m);
int nr_possible_cpus(void);

/* The observer's links pinned in pin_dir. */
int observer_links_pinned(const char *pin_dir);

/* Writes the status object's fields (no braces) for `status` and serve's `status` (status.c). */
void write_status_fields(FILE *f, const char *pin_dir, const struct pinned_maps *m);

/* The counters of bpf/scx_slo.h's SLO_COUNTERS, by enum slo_counter (abi.c). */
struct counter_desc {
	const char *name, *metric, *help;
};
extern const struct counter_desc slo_counter_desc[NR_SLO_COUNTERS];
void write_counters(FILE *f, int counters_fd);

/* libbpf's messages (the verifier log among them), kept to be shown when loading fails
 * (libbpf_log.c). keep_libbpf_log starts a fresh log; show_libbpf_debug keeps debug lines too. */
void keep_libbpf_log(void);
const char *kept_libbpf_log(void);
void show_libbpf_debug(bool on);

/* Layout identity (layout.c): which build's maps are pinned, and whether this build may reuse them. */
#define LAYOUT_PIN "layout_map"
#define MAX_PINNED_MAPS 32
enum pins_match {
	PINS_NONE,  /* no maps pinned */
	PINS_SAME,  /* pinned by a build of this layout: reuse them */
	PINS_OTHER, /* pinned by a build of another layout, or of none known: replace them */
};
void *rodata_var(struct bpf_object *obj, const char *name, size_t size);
int object_layout(struct bpf_object *obj, struct slo_layout *out);
int pinned_layout(const char *pin_dir, struct slo_layout *out);
enum pins_match match_pins(const char *pin_dir, const struct slo_layout *obj,
			   struct slo_layout *pinned, bool *pinned_known);
int write_layout_pin(const char *pin_dir, const struct slo_layout *l);
void json_layout(FILE *f, const struct slo_layout *l);
void write_layout_status(FILE *f, const char *pin_dir, const char *obj_path);

int cmd_abi(void);
int cmd_status(const char *pin_dir, const char *obj_path);
int cmd_serve(const char *pin_dir);
int cmd_observe(const char *pin_dir, const char *obj_path, const char *slo_pin_dir);
int cmd_unobserve(const char *pin_dir, int purge);

#endif
