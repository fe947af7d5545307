// SPDX-License-Identifier: GPL-2.0
/*
 * scx-slo-loader: the only C in scx-slo that talks to libbpf.
 *
 *   load   [--obj F] [--pin-dir D] [--default-budget-ms N] [--default-importance N]
 *          [--max-slice-us N]           open, set tunables, load, attach, pin link and maps
 *   standby [load's options]            load and verify now; attach on "attach" from stdin
 *   adopt  [load's options]             scx_slo is attached: keep it if its pins are of this
 *                                       build's layout, else hand over to this build
 *   unload [--pin-dir D] [--purge]      unpin the link (the kernel falls back to the fair class);
 *                                       --purge also drops the pinned maps (SLOs, stats)
 *   status [--pin-dir D]                one JSON line: attached? whose? last exit reason
 *   serve  [--pin-dir D]                JSON-lines service for the agent (see serve.c)
 *   abi                                 one JSON line: the constants shared with user space
 *   observe [--pin-dir D] [--obj F] [--slo-pin-dir S]
 *                                       kernels without sched_ext (or beside scx_slo): load the
 *                                       observer, attach and pin its tracing programs (observe.c)
 *   unobserve [--pin-dir D] [--purge]   unpin them (also `observe --stop`)
 *
 * The link and maps are pinned under /sys/fs/bpf/scx_slo so the scheduler keeps running when
 * this process, or the agent that started it, dies. Maps are reused across loads, so SLOs and
 * cumulative stats survive a re-attach, as long as they were pinned by a build of the same layout
 * (layout.c); those of another build are replaced, never reused. Every error is one line on
 * stderr, exit status 1.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

/* Write a .rodata variable of the object before load (no skeleton: see README, native/). */
static int set_rodata(struct bpf_object *obj, const char *name, const void *val, size_t size)
{
	void *var = rodata_var(obj, name, size);

	if (!var)
		return -ENOENT;
	memcpy(var, val, size);
	return 0;
}

struct load_opts {
	const char *obj_path;
	__u64 default_budget_ns;
	__u32 default_importance;
	__u64 max_slice_ns;
	__u64 test_stall_cgid;  /* test builds only: a cgroup whose tasks are never dispatched */
	bool enforce_cpu_max;   /* scx_slo enforces cpu.max itself (default) */
};

/* Byte offset of a member of a struct in a BTF, or -1. */
static int member_offset(const struct btf *btf, const char *type, const char *member)
{
	const struct btf_type *t;
	const struct btf_member *m;
	int id = btf__find_by_name_kind(btf, type, BTF_KIND_STRUCT), i;

	if (id < 0)
		return -1;
	t = btf__type_by_id(btf, id);
	m = btf_members(t);
	for (i = 0; i < btf_vlen(t); i++, m++) {
		if (!strcmp(btf__name_by_offset(btf, m->name_off), member))
			return (int)(btf_member_bit_offset(t, i) / 8);
	}
	return -1;
}

/* sched_ext_ops callbacks newer than the oldest supported kernel (6.12), with their programs. */
static const struct {
	const char *member, *prog;
} optional_ops[] = {
	{ "cgroup_set_bandwidth", "slo_cgroup_set_bandwidth" },
};
#define NR_OPTIONAL_OPS (sizeof(optional_ops) / sizeof(optional_ops[0]))

/* Which optional callbacks the running kernel's sched_ext_ops lacks (bit i: optional_ops[i]). */
static unsigned int optional_ops_missing_in_kernel(void)
{
	struct btf *vmlinux = btf__load_vmlinux_btf();
	unsigned int missing = 0;
	size_t i;

	if (!vmlinux)
		return 0;
	for (i = 0; i < NR_OPTIONAL_OPS; i++)
		if (member_offset(vmlinux, "sched_ext_ops", optional_ops[i].member) < 0)
			missing |= 1u << i;
	btf__free(vmlinux);
	return missing;
}

/*
 * libbpf refuses a struct_ops member the kernel does not know unless it is NULL: set the chosen
 * callbacks to NULL in the struct_ops map and do not load their programs.
 * SCX_SLO_TEST_DROP_OPS=name drops one on any kernel (tests of this path on a new kernel).
 */
static void drop_optional_ops(struct bpf_object *obj, unsigned int which)
{
	const char *forced = getenv("SCX_SLO_TEST_DROP_OPS");
	struct bpf_map *ops_map = bpf_object__find_map_by_name(obj, "slo_ops");
	size_t i, size = 0;
	char *data = ops_map ? bpf_map__initial_value(ops_map, &size) : NULL;

	for (i = 0; data && i < NR_OPTIONAL_OPS; i++) {
		int off = member_offset(bpf_object__btf(obj), "sched_ext_ops", optional_ops[i].member);
		struct bpf_program *prog = bpf_object__find_program_by_name(obj, optional_ops[i].prog);

		if (!(which & (1u << i)) && !(forced && !strcmp(forced, optional_ops[i].member)))
			continue;
		if (off < 0 || (size_t)off + sizeof(void *) > size)
			continue;
		*(void **)(data + off) = NULL;
		if (prog)
			bpf_program__set_autoload(prog, false);
		fprintf(stderr,
			"scx-slo-loader: this kernel's sched_ext has no %s: loading without it%s\n",
			optional_ops[i].member,
			strcmp(optional_ops[i].member, "cgroup_set_bandwidth") ?
				"" :
				" (cpu.max limits are not seen before Linux 6.17)");
	}
}

/* The pinned maps a standby took over, by id, so that attach can tell whether they are current. */
struct shared_maps {
	int n;
	char path[MAX_PINNED_MAPS][PATH_MAX];
	__u32 id[MAX_PINNED_MAPS];
};

/* Maps created afresh beside pins of another layout, and where they are pinned once attached. */
struct fresh_maps {
	int n;
	struct bpf_map *map[MAX_PINNED_MAPS];
	char path[MAX_PINNED_MAPS][PATH_MAX];
};

/* An object opened, set up and (after prepare_object) loaded, with what it found pinned. */
struct prepared {
	struct bpf_object *obj;
	struct bpf_map *ops_map;
	struct slo_layout layout;  /* this object's */
	struct slo_layout pinned;  /* the pinned one, when pinned_known */
	bool pinned_known;
	enum pins_match match;
	struct shared_maps shared; /* standby over pins of this layout */
	struct fresh_maps fresh;   /* any load over pins of another layout */
};

static __u32 map_id_of_fd(int fd)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	return bpf_map_get_info_by_fd(fd, &info, &len) ? 0 : info.id;
}

/*
 * Standby only: use the pinned map itself instead of a pin path, which libbpf would fill with a
 * new map (and pin it) if the pin had gone since, undoing an `unload --purge`.
 */
static int share_pinned_map(struct bpf_map *map, const char *path, struct shared_maps *shared)
{
	int fd = bpf_obj_get(path), err;

	if (fd < 0)
		return fail("no scx_slo map pinned at %s: a standby reuses the pinned maps, load once first",
			    path);
	if (shared->n == MAX_PINNED_MAPS) {
		close(fd);
		return fail("more pinned maps than a standby tracks (%d)", MAX_PINNED_MAPS);
	}
	err = bpf_map__reuse_fd(map, fd);
	if (!err) {
		snprintf(shared->path[shared->n], PATH_MAX, "%s", path);
		shared->id[shared->n++] = map_id_of_fd(fd);
	}
	close(fd);
	return err ? fail("reusing the pinned map %s failed: %s", path, strerror(-err)) : 0;
}

/* Pins of another layout: this object gets maps of its own, pinned in their place once attached. */
static int use_fresh_map(struct bpf_map *map, const char *path, struct fresh_maps *fresh)
{
	if (fresh->n == MAX_PINNED_MAPS)
		return fail("more pinned maps than the loader tracks (%d)", MAX_PINNED_MAPS);
	fresh->map[fresh->n] = map;
	snprintf(fresh->path[fresh->n++], PATH_MAX, "%s", path);
	return bpf_map__set_pin_path(map, NULL);
}

/*
 * Opens the object and sets it up for loading: tunables, callbacks to drop, map pins. Pins of this
 * layout are reused (a standby takes them over and never creates or pins a map); pins of another
 * layout are left alone and the object gets fresh maps (attach_and_pin puts them in their place).
 */
static int open_object(const char *pin_dir, const struct load_opts *o, unsigned int drop,
		       bool standby, struct prepared *p)
{
	LIBBPF_OPTS(bpf_object_open_opts, open_opts, .pin_root_path = pin_dir);
	__u32 nr_cpus, *abi;
	struct bpf_map *map;
	int err;

	p->obj = bpf_object__open_file(o->obj_path, &open_opts);
	if (!p->obj)
		return fail("cannot open BPF object %s: %s (run `make build`)", o->obj_path,
			    strerror(errno));
	nr_cpus = (__u32)libbpf_num_possible_cpus();
	if (set_rodata(p->obj, "default_budget_ns", &o->default_budget_ns, 8) ||
	    set_rodata(p->obj, "default_importance", &o->default_importance, 4) ||
	    set_rodata(p->obj, "max_slice_ns", &o->max_slice_ns, 8) ||
	    set_rodata(p->obj, "nr_cpus", &nr_cpus, 4))
		return fail("BPF object %s lacks the expected tunables; rebuild it", o->obj_path);
	if (o->test_stall_cgid && set_rodata(p->obj, "test_stall_cgid", &o->test_stall_cgid, 8))
		return fail("--test-stall-cgroup needs the test build (build/scx_slo_test.bpf.o)");
	if (o->enforce_cpu_max && set_rodata(p->obj, "enforce_cpu_max", &o->enforce_cpu_max, 1))
		return fail("BPF object %s has no cpu.max enforcement; rebuild it", o->obj_path);
	abi = rodata_var(p->obj, "scx_slo_abi_version", sizeof(*abi));
	if (!abi || *abi != SCX_SLO_ABI_VERSION)
		return fail("BPF object %s is of ABI version %d, this loader of %d; build both together",
			    o->obj_path, abi ? (int)*abi : 0, SCX_SLO_ABI_VERSION);
	drop_optional_ops(p->obj, drop);
	err = object_layout(p->obj, &p->layout);
	if (err)
		return fail("cannot compute the layout of %s: %s", o->obj_path, strerror(-err));
	p->match = match_pins(pin_dir, &p->layout, &p->pinned, &p->pinned_known);
	p->shared.n = 0;
	p->fresh.n = 0;

	/*
	 * Which maps are pinned is said where each is declared (LIBBPF_PIN_BY_NAME): libbpf reuses
	 * the pinned map when present, so SLOs and stats survive a re-attach, and pins a new one
	 * otherwise.
	 */
	p->ops_map = NULL;
	bpf_object__for_each_map(map, p->obj) {
		const char *path = bpf_map__pin_path(map);

		if (bpf_map__type(map) == BPF_MAP_TYPE_STRUCT_OPS) {
			p->ops_map = map;
			continue;
		}
		if (!path)
			continue;
		if (p->match == PINS_OTHER)
			err = use_fresh_map(map, path, &p->fresh);
		else if (standby)
			err = share_pinned_map(map, path, &p->shared) || bpf_map__set_pin_path(map, NULL);
		else
			err = 0;
		if (err)
			return 1;
	}
	return 0;
}

static void close_prepared(struct prepared *p)
{
	bpf_object__close(p->obj);
	p->obj = NULL;
}

/* Opens, sets up and loads (verifies) the object; retries without callbacks the kernel lacks. */
static int prepare_object(const char *pin_dir, const struct load_opts *o, bool standby,
			  struct prepared *p)
{
	int err;

	/* A standby only takes over existing pins (open_object), so it creates nothing. */
	if (!standby && ensure_dir(pin_dir))
		return fail("cannot create %s: %s (is bpffs mounted at /sys/fs/bpf?)", pin_dir,
			    strerror(errno));
	keep_libbpf_log();
	if (open_object(pin_dir, o, 0, standby, p)) {
		close_prepared(p);
		return 1;
	}
	err = bpf_object__load(p->obj);
	if (err) {
		/* Checked only on failure: reading the kernel's BTF costs a verifier's worth of time. */
		unsigned int missing = optional_ops_missing_in_kernel();

		if (missing) {
			close_prepared(p);
			keep_libbpf_log();
			if (open_object(pin_dir, o, missing, standby, p)) {
				close_prepared(p);
				return 1;
			}
			err = bpf_object__load(p->obj);
		}
	}
	if (err) {
		const char *tail = kept_libbpf_log();

		fprintf(stderr,
			"scx-slo-loader: error: the kernel rejected %s (%s); verifier log follows\n%s",
			o->obj_path, strerror(-err), tail);
		close_prepared(p);
		return 1;
	}
	if (!p->ops_map) {
		close_prepared(p);
		return fail("BPF object %s has no sched_ext_ops", o->obj_path);
	}
	return 0;
}

/* Refuses when some scheduler is attached; drops a link pin left by one that has exited. */
static int check_nothing_attached(const char *pin_dir)
{
	char ops[64];

	if (read_ops_name(ops, sizeof(ops)) == 0 && ops[0]) {
		if (!strcmp(ops, SCX_SLO_NAME) && pin_exists(pin_dir, "link"))
			return fail("scx_slo is already loaded (pinned at %s/link); unload it first", pin_dir);
		return fail("another sched_ext scheduler (%s) is attached; stop it first", ops);
	}
	unlink_pin(pin_dir, "link");
	return 0;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* What a hand-over did, for the reply. */
struct handover {
	bool done;
	double fallback_ms;  /* detach of the old scheduler to attach of this one; < 0: none ran */
	int replaced, dropped;
};

/*
 * Pins of another layout: this object's maps take their names, pins the object lacks are dropped,
 * and layout_map names this build. Runs after the attach, so a crash on the way leaves pins that
 * the next load still sees as another layout's, never an old scheduler under this build's name.
 */
static int replace_pins(const char *pin_dir, struct prepared *p, struct handover *h)
{
	DIR *dir = opendir(pin_dir);
	struct dirent *e;
	int i, err;

	for (i = 0; i < p->fresh.n; i++) {
		unlink(p->fresh.path[i]);
		err = bpf_map__pin(p->fresh.map[i], p->fresh.path[i]);
		if (err)
			return fail("pinning %s failed: %s", p->fresh.path[i], strerror(-err));
		h->replaced++;
	}
	while (dir && (e = readdir(dir))) {
		char path[PATH_MAX];
		bool ours = !strcmp(e->d_name, "link") || !strcmp(e->d_name, LAYOUT_PIN) ||
			    e->d_name[0] == '.';

		snprintf(path, sizeof(path), "%s/%s", pin_dir, e->d_name);
		for (i = 0; !ours && i < p->fresh.n; i++)
			ours = !strcmp(p->fresh.path[i], path);
		if (!ours && !unlink(path))
			h->dropped++;
	}
	if (dir)
		closedir(dir);
	return 0;
}

static void print_loaded(const char *pin_dir, const struct load_opts *o, const struct prepared *p,
			 const struct handover *h)
{
	printf("{\"ok\":true,\"loaded\":\"%s\",\"pin_dir\":\"%s\",\"default_budget_ns\":%llu,"
	       "\"layout\":",
	       SCX_SLO_NAME, pin_dir, (unsigned long long)o->default_budget_ns);
	json_layout(stdout, &p->layout);
	fputs(",\"handover\":", stdout);
	if (h->done) {
		fputs("{\"from\":", stdout);
		json_layout(stdout, p->pinned_known ? &p->pinned : NULL);
		fputs(",\"fallback_ms\":", stdout);
		if (h->fallback_ms < 0)
			fputs("null", stdout);
		else
			printf("%.1f", h->fallback_ms);
		printf(",\"maps_replaced\":%d,\"pins_dropped\":%d}", h->replaced, h->dropped);
	} else {
		fputs("null", stdout);
	}
	fputs("}\n", stdout);
	fflush(stdout);
}

/* Detaches the scheduler pinned now (its link pin is the last reference) and waits until it is gone. */
static int detach_pinned(const char *pin_dir)
{
	double deadline = now_ms() + 5000;
	char state[32];

	unlink_pin(pin_dir, "link");
	while (now_ms() < deadline) {
		if (read_text(SCX_SYSFS "/state", state, sizeof(state)) == 0 &&
		    !strcmp(state, "disabled"))
			return 0;
		usleep(500);
	}
	return fail("the old scheduler did not detach within 5 s (sched_ext %s)", state);
}

/*
 * Attaches a loaded object's struct_ops and pins the link, then, over pins of another layout,
 * puts this object's maps in their place; `detach_first` unpins the scheduler attached now just
 * before (a hand-over). The object is closed either way.
 */
static int attach_and_pin(const char *pin_dir, struct prepared *p, const struct load_opts *o,
			  bool detach_first)
{
	struct handover h = { .done = p->match == PINS_OTHER, .fallback_ms = -1 };
	char path[PATH_MAX];
	struct bpf_link *link;
	double t0 = 0;
	int err;

	if (detach_first) {
		t0 = now_ms();
		if (detach_pinned(pin_dir)) {
			close_prepared(p);
			return 1;
		}
	}
	link = bpf_map__attach_struct_ops(p->ops_map);
	if (!link) {
		err = -errno;
		close_prepared(p);
		if (err == -EBUSY || err == -EEXIST)
			return fail("another sched_ext scheduler is attached; stop it first");
		return fail("attaching the scheduler failed: %s; see `dmesg`", strerror(-err));
	}
	if (detach_first)
		h.fallback_ms = now_ms() - t0;
	snprintf(path, sizeof(path), "%s/link", pin_dir);
	err = bpf_link__pin(link, path);
	if (err) {
		bpf_link__destroy(link);
		close_prepared(p);
		return fail("pinning the link at %s failed: %s", path, strerror(-err));
	}
	if (p->match == PINS_OTHER && replace_pins(pin_dir, p, &h)) {
		bpf_link__disconnect(link);
		bpf_link__destroy(link);
		close_prepared(p);
		return 1;
	}
	if (p->match != PINS_SAME && (err = write_layout_pin(pin_dir, &p->layout)))
		fprintf(stderr, "scx-slo-loader: cannot pin %s/%s: %s\n", pin_dir, LAYOUT_PIN,
			strerror(-err));
	print_loaded(pin_dir, o, p, &h);
	/* Exiting closes our fds; the pins keep the link and maps, so the scheduler stays. */
	bpf_link__disconnect(link);
	bpf_link__destroy(link);
	close_prepared(p);
	return 0;
}

static int cmd_load(const char *pin_dir, const struct load_opts *o)
{
	static struct prepared p;

	if (check_sched_ext_kernel() || check_nothing_attached(pin_dir))
		return 1;
	if (prepare_object(pin_dir, o, false, &p))
		return 1;
	return attach_and_pin(pin_dir, &p, o, false);
}

/*
 * adopt: the agent found scx_slo attached. Pinned by a build of this layout, it is adopted as it
 * runs ({"ok":true,"adopted":true}). Pinned by another build (another layout, or one without an
 * identity), it is handed over: this object is loaded and verified beside it with fresh maps, then
 * the old one is detached and this one attached at once, and its maps take the old pins' names.
 * The reply is load's, with "handover" saying what was replaced and how long the kernel's fair
 * class ran in between; the agent then writes the SLOs into the new maps.
 */
static int cmd_adopt(const char *pin_dir, const struct load_opts *o)
{
	static struct prepared p;
	char ops[64];

	if (check_sched_ext_kernel())
		return 1;
	if (read_ops_name(ops, sizeof(ops)) || strcmp(ops, SCX_SLO_NAME) || !pin_exists(pin_dir, "link"))
		return fail("scx_slo is not attached with its link pinned at %s: nothing to adopt",
			    pin_dir);
	/* Opening is enough to know the layout; the verifier runs only for a hand-over. */
	keep_libbpf_log();
	if (open_object(pin_dir, o, 0, false, &p)) {
		close_prepared(&p);
		return 1;
	}
	if (p.match != PINS_OTHER) {
		/* Kept as it runs; a scheduler whose maps have no identity pinned gets this build's. */
		if (p.match == PINS_NONE)
			write_layout_pin(pin_dir, &p.layout);
		printf("{\"ok\":true,\"adopted\":true,\"layout\":");
		json_layout(stdout, &p.layout);
		fputs(",\"handover\":null}\n", stdout);
		close_prepared(&p);
		return 0;
	}
	close_prepared(&p);
	if (prepare_object(pin_dir, o, false, &p))
		return 1;
	return attach_and_pin(pin_dir, &p, o, true);
}

/*
 * The maps a standby took over must still be the pinned ones: an `unload --purge` and a fresh
 * load since it was made leave it holding maps nobody else reads. A standby made beside pins of
 * another layout must still find them so: pins of its own layout mean another loader has
 * replaced them since.
 */
static int standby_current(const char *pin_dir, const struct prepared *p)
{
	struct slo_layout now;
	bool known;
	int i;

	if (p->match == PINS_OTHER)
		return match_pins(pin_dir, &p->layout, &now, &known) == PINS_OTHER;
	for (i = 0; i < p->shared.n; i++) {
		int fd = bpf_obj_get(p->shared.path[i]);
		__u32 id = fd < 0 ? 0 : map_id_of_fd(fd);

		if (fd >= 0)
			close(fd);
		if (!id || id != p->shared.id[i])
			return 0;
	}
	return 1;
}

/*
 * standby: load and verify now, attach later. Prints {"ready":true} once the object is verified,
 * then waits for a line on stdin: "attach" attaches it (the reply is load's) and exits; end of
 * input exits without attaching. The agent keeps one while scx_slo runs, so a re-attach costs one
 * link creation instead of a libbpf open and a verifier pass (most of a second under emulation).
 */
static int cmd_standby(const char *pin_dir, const struct load_opts *o)
{
	static struct prepared p;
	char line[64];

	if (check_sched_ext_kernel())
		return 1;
	if (prepare_object(pin_dir, o, true, &p))
		return 1;
	printf("{\"ready\":true}\n");
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin) || strncmp(line, "attach", 6)) {
		close_prepared(&p);
		return 0;
	}
	if (!standby_current(pin_dir, &p)) {
		close_prepared(&p);
		return fail("standby is stale: the maps at %s were replaced since it was loaded",
			    pin_dir);
	}
	if (check_nothing_attached(pin_dir)) {
		close_prepared(&p);
		return 1;
	}
	return attach_and_pin(pin_dir, &p, o, false);
}

static int cmd_unload(const char *pin_dir, int purge)
{
	int had_link = pin_exists(pin_dir, "link");

	if (geteuid() != 0)
		return fail("not root: unloading a BPF scheduler needs root");
	unlink_pin(pin_dir, "link");
	if (purge)
		purge_pin_dir(pin_dir);
	printf("{\"ok\":true,\"unloaded\":%s,\"purged\":%s}\n", had_link ? "true" : "false",
	       purge ? "true" : "false");
	return 0;
}

/* The objects are built next to this binary (build/), wherever the checkout is. */
static void default_object_path(char *buf, size_t size, const char *name)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	if (n <= 0) {
		snprintf(buf, size, "%s", name);
		return;
	}
	exe[n] = 0;
	slash = strrchr(exe, '/');
	if (slash)
		*slash = 0;
	snprintf(buf, size, "%s/%s", exe, name);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: scx-slo-loader load|standby|adopt|unload|status|serve|abi|observe|unobserve [options]\n"
		"  --pin-dir DIR            bpffs folder for pins (default %s;\n"
		"                           observe, unobserve: %s)\n"
		"  --obj FILE               BPF object (load, standby, adopt, status, observe; default:\n"
		"                           beside this binary)\n"
		"  --slo-pin-dir DIR        observe: read the SLOs pinned there (the scheduler's) instead\n"
		"                           of the observer's own\n"
		"  --stop                   observe: stop observing (the same as unobserve)\n"
		"  --default-budget-ms N    budget for tasks without an SLO (load; default 100)\n"
		"  --default-importance N   importance for tasks without an SLO (load; default 50)\n"
		"  --max-slice-us N         longest time slice (load; default 5000)\n"
		"  --purge                  unload, unobserve: also remove the pinned maps\n"
		"  --test-stall-cgroup ID   load, test build only: never dispatch that cgroup\n"
		"  --no-enforce-cpu-max     load: leave cpu.max unenforced (the kernel does not enforce it\n"
		"                           while a sched_ext scheduler is attached)\n"
		"  -v                       verbose libbpf output\n",
		DEFAULT_PIN_DIR, DEFAULT_OBSERVE_PIN_DIR);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "pin-dir", required_argument, NULL, 'p' },
		{ "obj", required_argument, NULL, 'o' },
		{ "default-budget-ms", required_argument, NULL, 'b' },
		{ "default-importance", required_argument, NULL, 'i' },
		{ "max-slice-us", required_argument, NULL, 's' },
		{ "purge", no_argument, NULL, 'P' },
		{ "test-stall-cgroup", required_argument, NULL, 'T' },
		{ "no-enforce-cpu-max", no_argument, NULL, 'N' },
		{ "slo-pin-dir", required_argument, NULL, 'L' },
		{ "stop", no_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 },
	};
	static char default_obj[PATH_MAX], observe_obj[PATH_MAX];
	struct load_opts lo = {
		.obj_path = default_obj,
		.default_budget_ns = 100 * NSEC_PER_MSEC,
		.default_importance = 50,
		.max_slice_ns = 5000ULL * 1000,
		.enforce_cpu_max = true,
	};
	const char *pin_dir = NULL, *cmd, *slo_pin_dir = NULL, *obj = NULL;
	int purge = 0, stop = 0, c;
	__u64 v;

	default_object_path(default_obj, sizeof(default_obj), "scx_slo.bpf.o");
	default_object_path(observe_obj, sizeof(observe_obj), "observe.bpf.o");
	if (argc < 2) {
		usage();
		return 2;
	}
	cmd = argv[1];
	optind = 2;
	while ((c = getopt_long(argc, argv, "v", longopts, NULL)) != -1) {
		switch (c) {
		case 'p': pin_dir = optarg; break;
		case 'o': obj = optarg; break;
		case 'b':
			if (parse_u64(optarg, &v) || v < SLO_BUDGET_MIN_NS / NSEC_PER_MSEC ||
			    v > SLO_BUDGET_MAX_NS / NSEC_PER_MSEC)
				return fail("--default-budget-ms must be %llu..%llu, got '%s'",
					    SLO_BUDGET_MIN_NS / NSEC_PER_MSEC,
					    SLO_BUDGET_MAX_NS / NSEC_PER_MSEC, optarg);
			lo.default_budget_ns = v * NSEC_PER_MSEC;
			break;
		case 'i':
			if (parse_u64(optarg, &v) || v < SLO_IMPORTANCE_MIN || v > SLO_IMPORTANCE_MAX)
				return fail("--default-importance must be %d..%d, got '%s'",
					    SLO_IMPORTANCE_MIN, SLO_IMPORTANCE_MAX, optarg);
			lo.default_importance = (__u32)v;
			break;
		case 's':
			if (parse_u64(optarg, &v) || v < 100 || v > 100000)
				return fail("--max-slice-us must be 100..100000, got '%s'", optarg);
			lo.max_slice_ns = v * 1000;
			break;
		case 'P': purge = 1; break;
		case 'T':
			if (parse_u64(optarg, &lo.test_stall_cgid))
				return fail("--test-stall-cgroup takes a cgroup id, got '%s'", optarg);
			break;
		case 'N':
			lo.enforce_cpu_max = false;
			break;
		case 'L': slo_pin_dir = optarg; break;
		case 'S': stop = 1; break;
		case 'v': show_libbpf_debug(true); break;
		default: usage(); return 2;
		}
	}
	if (!strcmp(cmd, "observe") || !strcmp(cmd, "unobserve")) {
		if (!pin_dir)
			pin_dir = DEFAULT_OBSERVE_PIN_DIR;
		if (stop || !strcmp(cmd, "unobserve"))
			return cmd_unobserve(pin_dir, purge);
		return cmd_observe(pin_dir, obj ? obj : observe_obj, slo_pin_dir);
	}
	if (!pin_dir)
		pin_dir = DEFAULT_PIN_DIR;
	if (obj)
		lo.obj_path = obj;
	if (!strcmp(cmd, "load")) {
		if (geteuid() != 0)
			return fail("not root: loading a BPF scheduler needs root (or CAP_BPF+CAP_SYS_ADMIN)");
		return cmd_load(pin_dir, &lo);
	}
	if (!strcmp(cmd, "standby")) {
		if (geteuid() != 0)
			return fail("not root: loading a BPF scheduler needs root (or CAP_BPF+CAP_SYS_ADMIN)");
		return cmd_standby(pin_dir, &lo);
	}
	if (!strcmp(cmd, "adopt")) {
		if (geteuid() != 0)
			return fail("not root: adopting a BPF scheduler needs root (or CAP_BPF+CAP_SYS_ADMIN)");
		return cmd_adopt(pin_dir, &lo);
	}
	if (!strcmp(cmd, "unload"))
		return cmd_unload(pin_dir, purge);
	if (!strcmp(cmd, "status"))
		return cmd_status(pin_dir, lo.obj_path);
	if (!strcmp(cmd, "abi"))
		return cmd_abi();
	if (!strcmp(cmd, "serve"))
		return cmd_serve(pin_dir);
	usage();
	return 2;
}
