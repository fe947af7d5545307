// SPDX-License-Identifier: GPL-2.0
/*
 * scx-slo-loader: the only C in scx-slo that talks to libbpf.
 *
 *   load   [--obj F] [--pin-dir D] [--default-budget-ms N] [--default-importance N]
 *          [--max-slice-us N]           open, set tunables, load, attach, pin link and maps
 *   standby [load's options]            load and verify now; attach on "attach" from stdin
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
 * cumulative stats survive a re-attach. Every error is one line on stderr, exit status 1.
 */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

static char verifier_log[1 << 20];
static size_t verifier_log_len;
static int verbose;

/* libbpf's messages (the verifier log among them) are kept and shown only when loading fails. */
static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_DEBUG && !verbose)
		return 0;
	if (verifier_log_len < sizeof(verifier_log) - 1) {
		int n = vsnprintf(verifier_log + verifier_log_len,
				  sizeof(verifier_log) - verifier_log_len, fmt, args);
		if (n > 0)
			verifier_log_len += (size_t)n;
		if (verifier_log_len >= sizeof(verifier_log))
			verifier_log_len = sizeof(verifier_log) - 1;
	}
	return 0;
}

void keep_libbpf_log(void)
{
	verifier_log_len = 0;
	libbpf_set_print(libbpf_print);
}

const char *kept_libbpf_log(void)
{
	return verifier_log_len ? verifier_log : "(no log)\n";
}

/* Write a .rodata variable of the object before load (no skeleton: see README, native/). */
static int set_rodata(struct bpf_object *obj, const char *name, const void *val, size_t size)
{
	struct bpf_map *rodata = NULL, *m;
	const struct btf_var_secinfo *vs;
	const struct btf_type *sec;
	struct btf *btf = bpf_object__btf(obj);
	size_t map_size;
	char *data;
	int id, i;

	bpf_object__for_each_map(m, obj) {
		const char *n = bpf_map__name(m);
		size_t len = strlen(n);

		if (len >= 7 && !strcmp(n + len - 7, ".rodata"))
			rodata = m;
	}
	if (!btf || !rodata)
		return -ENOENT;
	id = btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC);
	if (id < 0)
		return id;
	sec = btf__type_by_id(btf, id);
	data = bpf_map__initial_value(rodata, &map_size);
	vs = btf_var_secinfos(sec);
	for (i = 0; i < btf_vlen(sec); i++, vs++) {
		const struct btf_type *var = btf__type_by_id(btf, vs->type);

		if (strcmp(btf__name_by_offset(btf, var->name_off), name))
			continue;
		if (vs->size != size || vs->offset + size > map_size)
			return -EINVAL;
		memcpy(data + vs->offset, val, size);
		return 0;
	}
	return -ENOENT;
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
#define MAX_SHARED_MAPS 32
struct shared_maps {
	int n;
	char path[MAX_SHARED_MAPS][PATH_MAX];
	__u32 id[MAX_SHARED_MAPS];
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
	if (shared->n == MAX_SHARED_MAPS) {
		close(fd);
		return fail("more pinned maps than a standby tracks (%d)", MAX_SHARED_MAPS);
	}
	err = bpf_map__reuse_fd(map, fd);
	if (!err) {
		snprintf(shared->path[shared->n], PATH_MAX, "%s", path);
		shared->id[shared->n++] = map_id_of_fd(fd);
	}
	close(fd);
	return err ? fail("reusing the pinned map %s failed: %s", path, strerror(-err)) : 0;
}

/*
 * Opens the object and sets it up for loading: tunables, callbacks to drop, map pins. With
 * `shared` (standby) the pinned maps must all exist and are taken over, never created or pinned.
 */
static struct bpf_object *open_object(const char *pin_dir, const struct load_opts *o,
				      unsigned int drop, struct bpf_map **ops_map,
				      struct shared_maps *shared)
{
	LIBBPF_OPTS(bpf_object_open_opts, open_opts, .pin_root_path = pin_dir);
	struct bpf_object *obj;
	struct bpf_map *map;
	__u32 nr_cpus;

	obj = bpf_object__open_file(o->obj_path, &open_opts);
	if (!obj) {
		fail("cannot open BPF object %s: %s (run `make build`)", o->obj_path, strerror(errno));
		return NULL;
	}
	nr_cpus = (__u32)libbpf_num_possible_cpus();
	if (set_rodata(obj, "default_budget_ns", &o->default_budget_ns, 8) ||
	    set_rodata(obj, "default_importance", &o->default_importance, 4) ||
	    set_rodata(obj, "max_slice_ns", &o->max_slice_ns, 8) ||
	    set_rodata(obj, "nr_cpus", &nr_cpus, 4)) {
		bpf_object__close(obj);
		fail("BPF object %s lacks the expected tunables; rebuild it", o->obj_path);
		return NULL;
	}
	if (o->test_stall_cgid && set_rodata(obj, "test_stall_cgid", &o->test_stall_cgid, 8)) {
		bpf_object__close(obj);
		fail("--test-stall-cgroup needs the test build (build/scx_slo_test.bpf.o)");
		return NULL;
	}
	if (o->enforce_cpu_max && set_rodata(obj, "enforce_cpu_max", &o->enforce_cpu_max, 1)) {
		bpf_object__close(obj);
		fail("BPF object %s has no cpu.max enforcement; rebuild it", o->obj_path);
		return NULL;
	}
	drop_optional_ops(obj, drop);

	/*
	 * Which maps are pinned is said where each is declared (LIBBPF_PIN_BY_NAME): libbpf reuses
	 * the pinned map when present, so SLOs and stats survive a re-attach, and pins a new one
	 * otherwise. A standby takes over the pinned maps instead and pins nothing.
	 */
	*ops_map = NULL;
	bpf_object__for_each_map(map, obj) {
		const char *path = bpf_map__pin_path(map);

		if (bpf_map__type(map) == BPF_MAP_TYPE_STRUCT_OPS) {
			*ops_map = map;
			continue;
		}
		if (!shared || !path)
			continue;
		if (share_pinned_map(map, path, shared) || bpf_map__set_pin_path(map, NULL)) {
			bpf_object__close(obj);
			return NULL;
		}
	}
	return obj;
}

/* Opens, sets up and loads (verifies) the object; retries without callbacks the kernel lacks. */
static struct bpf_object *prepare_object(const char *pin_dir, const struct load_opts *o,
					 struct bpf_map **ops_map, struct shared_maps *shared)
{
	struct bpf_object *obj;
	int err;

	/* A standby only takes over existing pins (open_object), so it creates nothing. */
	if (!shared && ensure_dir(pin_dir)) {
		fail("cannot create %s: %s (is bpffs mounted at /sys/fs/bpf?)", pin_dir,
		     strerror(errno));
		return NULL;
	}
	libbpf_set_print(libbpf_print);
	obj = open_object(pin_dir, o, 0, ops_map, shared);
	if (!obj)
		return NULL;
	err = bpf_object__load(obj);
	if (err) {
		/* Checked only on failure: reading the kernel's BTF costs a verifier's worth of time. */
		unsigned int missing = optional_ops_missing_in_kernel();

		if (missing) {
			bpf_object__close(obj);
			verifier_log_len = 0;
			if (shared)
				shared->n = 0;
			obj = open_object(pin_dir, o, missing, ops_map, shared);
			if (!obj)
				return NULL;
			err = bpf_object__load(obj);
		}
	}
	if (err) {
		const char *tail = verifier_log_len ? verifier_log : "(no log)\n";

		fprintf(stderr,
			"scx-slo-loader: error: the kernel rejected %s (%s); verifier log follows\n%s",
			o->obj_path, strerror(-err), tail);
		bpf_object__close(obj);
		return NULL;
	}
	if (!*ops_map) {
		bpf_object__close(obj);
		fail("BPF object %s has no sched_ext_ops", o->obj_path);
		return NULL;
	}
	return obj;
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

/* Attaches a loaded object's struct_ops and pins the link; the object is closed either way. */
static int attach_and_pin(const char *pin_dir, struct bpf_object *obj, struct bpf_map *ops_map,
			  const struct load_opts *o)
{
	char path[PATH_MAX];
	struct bpf_link *link;
	int err;

	link = bpf_map__attach_struct_ops(ops_map);
	if (!link) {
		err = -errno;
		bpf_object__close(obj);
		if (err == -EBUSY || err == -EEXIST)
			return fail("another sched_ext scheduler is attached; stop it first");
		return fail("attaching the scheduler failed: %s; see `dmesg`", strerror(-err));
	}
	snprintf(path, sizeof(path), "%s/link", pin_dir);
	err = bpf_link__pin(link, path);
	if (err) {
		bpf_link__destroy(link);
		bpf_object__close(obj);
		return fail("pinning the link at %s failed: %s", path, strerror(-err));
	}
	printf("{\"ok\":true,\"loaded\":\"%s\",\"pin_dir\":\"%s\",\"default_budget_ns\":%llu}\n",
	       SCX_SLO_NAME, pin_dir, (unsigned long long)o->default_budget_ns);
	fflush(stdout);
	/* Exiting closes our fds; the pins keep the link and maps, so the scheduler stays. */
	bpf_link__disconnect(link);
	bpf_link__destroy(link);
	bpf_object__close(obj);
	return 0;
}

static int cmd_load(const char *pin_dir, const struct load_opts *o)
{
	struct bpf_object *obj;
	struct bpf_map *ops_map = NULL;

	if (check_sched_ext_kernel() || check_nothing_attached(pin_dir))
		return 1;
	obj = prepare_object(pin_dir, o, &ops_map, NULL);
	if (!obj)
		return 1;
	return attach_and_pin(pin_dir, obj, ops_map, o);
}

/*
 * The maps a standby took over must still be the pinned ones: an `unload --purge` and a fresh
 * load since it was made leave it holding maps nobody else reads.
 */
static int shared_maps_current(const struct shared_maps *shared)
{
	int i;

	for (i = 0; i < shared->n; i++) {
		int fd = bpf_obj_get(shared->path[i]);
		__u32 id = fd < 0 ? 0 : map_id_of_fd(fd);

		if (fd >= 0)
			close(fd);
		if (!id || id != shared->id[i])
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
	static struct shared_maps shared;
	struct bpf_map *ops_map = NULL;
	struct bpf_object *obj;
	char line[64];

	if (check_sched_ext_kernel())
		return 1;
	obj = prepare_object(pin_dir, o, &ops_map, &shared);
	if (!obj)
		return 1;
	printf("{\"ready\":true}\n");
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin) || strncmp(line, "attach", 6)) {
		bpf_object__close(obj);
		return 0;
	}
	if (!shared_maps_current(&shared)) {
		bpf_object__close(obj);
		return fail("standby is stale: the maps at %s were replaced since it was loaded",
			    pin_dir);
	}
	if (check_nothing_attached(pin_dir)) {
		bpf_object__close(obj);
		return 1;
	}
	return attach_and_pin(pin_dir, obj, ops_map, o);
}

static int cmd_unload(const char *pin_dir, int purge)
{
	int had_link = pin_exists(pin_dir, "link");

	if (geteuid() != 0)
		return fail("not root: unloading a BPF scheduler needs root");
	unlink_pin(pin_dir, "link");
	if (purge) {
		/* Every pin, whichever maps this build of the object has. */
		DIR *dir = opendir(pin_dir);
		struct dirent *e;

		while (dir && (e = readdir(dir)))
			if (e->d_name[0] != '.')
				unlink_pin(pin_dir, e->d_name);
		if (dir)
			closedir(dir);
		rmdir(pin_dir);
	}
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
		"usage: scx-slo-loader load|standby|unload|status|serve|abi|observe|unobserve [options]\n"
		"  --pin-dir DIR            bpffs folder for pins (default %s;\n"
		"                           observe, unobserve: %s)\n"
		"  --obj FILE               BPF object (load, standby, observe; default: beside this binary)\n"
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
		case 'v': verbose = 1; break;
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
	if (!strcmp(cmd, "unload"))
		return cmd_unload(pin_dir, purge);
	if (!strcmp(cmd, "status"))
		return cmd_status(pin_dir);
	if (!strcmp(cmd, "abi"))
		return cmd_abi();
	if (!strcmp(cmd, "serve"))
		return cmd_serve(pin_dir);
	usage();
	return 2;
}
