// SPDX-License-Identifier: GPL-2.0
/*
 * `scx-slo-loader observe`: loads the observer (bpf/observe.bpf.c), attaches its tracing programs
 * and pins each link as <pin dir>/link_<program>, beside its maps, so it keeps measuring when this
 * process, or the agent that started it, is gone. `unobserve` removes the link pins: the kernel
 * detaches the programs at once; the maps stay (SLOs, stats, offenders) unless --purge.
 *
 * By default the observer has maps of its own (slo_map among them) under its pin folder. With
 * --slo-pin-dir it reads the SLOs of another pin folder (the scheduler's) instead, and pins that
 * folder's slo_map and control_map in its own too, so a serve session on either folder writes
 * the same SLOs and the two measurements of one cgroup can be compared.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

/* The maps the observer takes from --slo-pin-dir. */
static const char *const shared_slo_maps[] = { "slo_map", "control_map" };
#define NR_SHARED_SLO_MAPS (sizeof(shared_slo_maps) / sizeof(shared_slo_maps[0]))
#define MAX_OBSERVE_LINKS 8

static void unpin_links(const char *pin_dir)
{
	DIR *dir = opendir(pin_dir);
	struct dirent *e;

	while (dir && (e = readdir(dir)))
		if (!strncmp(e->d_name, OBSERVE_LINK_PREFIX, strlen(OBSERVE_LINK_PREFIX)))
			unlink_pin(pin_dir, e->d_name);
	if (dir)
		closedir(dir);
}

/* Points the shared maps at slo_pin_dir's pins, which must exist (libbpf would make new ones). */
static int use_slo_maps_of(struct bpf_object *obj, const char *slo_pin_dir)
{
	char path[PATH_MAX];
	size_t i;

	for (i = 0; i < NR_SHARED_SLO_MAPS; i++) {
		struct bpf_map *map = bpf_object__find_map_by_name(obj, shared_slo_maps[i]);

		snprintf(path, sizeof(path), "%s/%s", slo_pin_dir, shared_slo_maps[i]);
		if (!map)
			return fail("the observer object has no %s; rebuild it", shared_slo_maps[i]);
		if (access(path, F_OK))
			return fail("no %s pinned at %s: load the scheduler first, or observe without "
				    "--slo-pin-dir", shared_slo_maps[i], slo_pin_dir);
		if (bpf_map__set_pin_path(map, path))
			return fail("cannot use the map pinned at %s", path);
	}
	return 0;
}

/* Pins the shared maps in the observer's folder too, so a serve session there has them. */
static int pin_slo_maps_here(struct bpf_object *obj, const char *pin_dir)
{
	char path[PATH_MAX];
	size_t i;

	for (i = 0; i < NR_SHARED_SLO_MAPS; i++) {
		struct bpf_map *map = bpf_object__find_map_by_name(obj, shared_slo_maps[i]);

		snprintf(path, sizeof(path), "%s/%s", pin_dir, shared_slo_maps[i]);
		if (!access(path, F_OK))
			continue;
		if (bpf_obj_pin(bpf_map__fd(map), path))
			return fail("pinning %s failed: %s", path, strerror(errno));
	}
	return 0;
}

int cmd_observe(const char *pin_dir, const char *obj_path, const char *slo_pin_dir)
{
	LIBBPF_OPTS(bpf_object_open_opts, open_opts, .pin_root_path = pin_dir);
	struct bpf_link *links[MAX_OBSERVE_LINKS];
	const char *names[MAX_OBSERVE_LINKS];
	struct bpf_program *prog;
	struct bpf_object *obj;
	char path[PATH_MAX];
	int n = 0, i, err;

	if (geteuid() != 0)
		return fail("not root: loading the observer needs root (or CAP_BPF+CAP_PERFMON)");
	if (ensure_dir(pin_dir))
		return fail("cannot create %s: %s (is bpffs mounted at /sys/fs/bpf?)", pin_dir,
			    strerror(errno));
	if (observer_links_pinned(pin_dir))
		return fail("the observer is already attached (links pinned at %s); stop it first "
			    "(scx-slo-loader unobserve)", pin_dir);
	keep_libbpf_log();
	obj = bpf_object__open_file(obj_path, &open_opts);
	if (!obj)
		return fail("cannot open BPF object %s: %s (run `make build`)", obj_path,
			    strerror(errno));
	if (slo_pin_dir && use_slo_maps_of(obj, slo_pin_dir)) {
		bpf_object__close(obj);
		return 1;
	}
	err = bpf_object__load(obj);
	if (err) {
		fprintf(stderr,
			"scx-slo-loader: error: the kernel rejected %s (%s); verifier log follows\n%s",
			obj_path, strerror(-err), kept_libbpf_log());
		bpf_object__close(obj);
		return 1;
	}
	if (slo_pin_dir && pin_slo_maps_here(obj, pin_dir)) {
		bpf_object__close(obj);
		return 1;
	}
	bpf_object__for_each_program(prog, obj) {
		struct bpf_link *link;

		if (n == MAX_OBSERVE_LINKS) {
			err = fail("more programs than the observer pins (%d)", MAX_OBSERVE_LINKS);
			goto undo;
		}
		link = bpf_program__attach(prog);
		if (!link) {
			err = fail("attaching %s failed: %s", bpf_program__name(prog), strerror(errno));
			goto undo;
		}
		snprintf(path, sizeof(path), "%s/%s%s", pin_dir, OBSERVE_LINK_PREFIX,
			 bpf_program__name(prog));
		names[n] = bpf_program__name(prog);
		links[n++] = link;
		err = bpf_link__pin(link, path);
		if (err) {
			err = fail("pinning the link at %s failed: %s", path, strerror(-err));
			goto undo;
		}
	}
	printf("{\"ok\":true,\"observing\":true,\"pin_dir\":");
	json_string(stdout, pin_dir);
	printf(",\"slo_pin_dir\":");
	json_string(stdout, slo_pin_dir ? slo_pin_dir : pin_dir);
	printf(",\"programs\":[");
	for (i = 0; i < n; i++) {
		printf("%s", i ? "," : "");
		json_string(stdout, names[i]);
	}
	printf("]}\n");
	fflush(stdout);
	/* Exiting closes our fds; the pins keep the links and maps, so the observer stays. */
	for (i = 0; i < n; i++) {
		bpf_link__disconnect(links[i]);
		bpf_link__destroy(links[i]);
	}
	bpf_object__close(obj);
	return 0;

undo:
	/* All or nothing: an observer missing a tracepoint would measure nonsense. */
	unpin_links(pin_dir);
	for (i = 0; i < n; i++)
		bpf_link__destroy(links[i]);
	bpf_object__close(obj);
	return err;
}

int cmd_unobserve(const char *pin_dir, int purge)
{
	int had = observer_links_pinned(pin_dir);

	if (geteuid() != 0)
		return fail("not root: stopping the observer needs root");
	unpin_links(pin_dir);
	if (purge)
		purge_pin_dir(pin_dir);
	printf("{\"ok\":true,\"stopped\":%s,\"purged\":%s}\n", had ? "true" : "false",
	       purge ? "true" : "false");
	return 0;
}
