// SPDX-License-Identifier: GPL-2.0
/*
 * `scx-slo-loader serve`: the agent's line protocol over stdin/stdout.
 *
 * Requests, one per line, words separated by spaces (written by src/sched/session.ts):
 *   <id> set <cgroup_id> <budget_ns> <importance> [<cgroup_id> <budget_ns> <importance> ...]
 *   <id> del <cgroup_id> [<cgroup_id> ...]
 *   <id> get <cgroup_id>
 *   <id> list | stats | counts | status | ping
 *   <id> offenders        (the observer's pins only: who held the CPU while SLO cgroups waited)
 * Replies, one JSON object per line: {"id":N,"ok":true,...} or {"id":N,"ok":false,"error":"..."}.
 * Deadline misses from the ring buffer are interleaved as {"event":"miss",...} lines, and the
 * scheduler's exit as an {"event":"exit",...} line the moment it happens.
 *
 * Every change is a map write plus one control.gen bump: tasks pick it up at their next
 * enqueue; the scheduler is never reloaded. Works whether or not the scheduler is attached, as
 * long as its maps are pinned (they stay pinned after an unload without --purge).
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

#define MAX_WORDS 3 * 1024 + 2

static struct pinned_maps maps = PINNED_MAPS_INIT;
static struct ring_buffer *rb;
static const char *pin_dir;

static int on_miss(void *ctx, void *data, size_t size)
{
	const struct miss_event *ev = data;
	char comm[sizeof(ev->comm) + 1];

	(void)ctx;
	if (size < sizeof(*ev))
		return 0;
	memcpy(comm, ev->comm, sizeof(ev->comm));
	comm[sizeof(ev->comm)] = 0;
	printf("{\"event\":\"miss\",\"cgroup_id\":\"%llu\",\"wait_ns\":%llu,\"budget_ns\":%llu,"
	       "\"at_ns\":%llu,\"pid\":%u,\"cpu\":%u,\"comm\":",
	       (unsigned long long)ev->cgroup_id, (unsigned long long)ev->wait_ns,
	       (unsigned long long)ev->budget_ns, (unsigned long long)ev->at_ns, ev->pid, ev->cpu);
	json_string(stdout, comm);
	fputs("}\n", stdout);
	return 0;
}

static int on_sched_event(void *ctx, void *data, size_t size)
{
	const struct sched_event *ev = data;

	(void)ctx;
	if (size < sizeof(*ev) || ev->kind != SCHED_EVENT_EXIT)
		return 0;
	printf("{\"event\":\"exit\",\"exit_kind\":%lld,\"at_ns\":%llu}\n",
	       (long long)ev->exit_kind, (unsigned long long)ev->at_ns);
	return 0;
}

static int ensure_maps(void)
{
	int sched_events;

	if (maps.slo >= 0)
		return 0;
	if (open_pinned_maps(pin_dir, &maps))
		return -1;
	rb = ring_buffer__new(maps.events, on_miss, NULL, NULL);
	/* Absent where the maps were pinned by an object without it; the agent then polls. */
	sched_events = open_pinned_map(pin_dir, "sched_events");
	if (rb && sched_events >= 0 && ring_buffer__add(rb, sched_events, on_sched_event, NULL))
		close(sched_events);
	return 0;
}

static void reply_error(const char *id, const char *msg)
{
	printf("{\"id\":%s,\"ok\":false,\"error\":", id);
	json_string(stdout, msg);
	fputs("}\n", stdout);
}

static int bump_gen(void)
{
	struct slo_control ctl = {};
	__u32 zero = 0;

	if (bpf_map_lookup_elem(maps.control, &zero, &ctl))
		return -errno;
	ctl.gen++;
	return bpf_map_update_elem(maps.control, &zero, &ctl, BPF_ANY) ? -errno : 0;
}

static void do_set(const char *id, char **w, int n)
{
	char msg[160];
	int i, applied = 0;

	if (n < 3 || n % 3) {
		reply_error(id, "set takes triples: <cgroup_id> <budget_ns> <importance>");
		return;
	}
	/* Validate everything first: a bad request changes nothing. */
	for (i = 0; i < n; i += 3) {
		__u64 cg, b, imp;

		if (parse_u64(w[i], &cg) || parse_u64(w[i + 1], &b) || parse_u64(w[i + 2], &imp) ||
		    b < SLO_BUDGET_MIN_NS || b > SLO_BUDGET_MAX_NS || imp < SLO_IMPORTANCE_MIN ||
		    imp > SLO_IMPORTANCE_MAX) {
			snprintf(msg, sizeof(msg),
				 "bad SLO '%s %s %s': budget_ns must be %llu..%llu, importance %d..%d",
				 w[i], w[i + 1], w[i + 2], SLO_BUDGET_MIN_NS, SLO_BUDGET_MAX_NS,
				 SLO_IMPORTANCE_MIN, SLO_IMPORTANCE_MAX);
			reply_error(id, msg);
			return;
		}
	}
	for (i = 0; i < n; i += 3) {
		struct slo_cfg cfg = {};
		__u64 cg, b, imp;

		parse_u64(w[i], &cg);
		parse_u64(w[i + 1], &b);
		parse_u64(w[i + 2], &imp);
		cfg.budget_ns = b;
		cfg.importance = (__u32)imp;
		if (bpf_map_update_elem(maps.slo, &cg, &cfg, BPF_ANY)) {
			snprintf(msg, sizeof(msg), "map update for cgroup %llu failed: %s%s",
				 (unsigned long long)cg, strerror(errno),
				 errno == E2BIG ? " (the SLO map is full)" : "");
			if (applied)
				bump_gen();
			reply_error(id, msg);
			return;
		}
		applied++;
	}
	bump_gen();
	printf("{\"id\":%s,\"ok\":true,\"applied\":%d}\n", id, applied);
}

/* The observer's offenders entries of one SLO cgroup (none without the observer's pins). */
static void drop_offenders_of(__u64 slo_cgid)
{
	struct offender_key key, next, *prev = NULL, *doomed;
	size_t n = 0, i;

	if (maps.offenders < 0)
		return;
	/* Collected first: a hash map's next key after a deleted one starts over. */
	doomed = calloc(OFFENDERS_MAX_ENTRIES, sizeof(*doomed));
	if (!doomed)
		return;
	while (n < OFFENDERS_MAX_ENTRIES && !bpf_map_get_next_key(maps.offenders, prev, &next)) {
		key = next;
		prev = &key;
		if (key.slo_cgid == slo_cgid)
			doomed[n++] = key;
	}
	for (i = 0; i < n; i++)
		bpf_map_delete_elem(maps.offenders, &doomed[i]);
	free(doomed);
}

static void do_del(const char *id, char **w, int n)
{
	int i, removed = 0;

	for (i = 0; i < n; i++) {
		__u64 cg;

		if (parse_u64(w[i], &cg)) {
			reply_error(id, "del takes cgroup ids");
			return;
		}
		if (!bpf_map_delete_elem(maps.slo, &cg))
			removed++;
		bpf_map_delete_elem(maps.stats, &cg);
		drop_offenders_of(cg);
	}
	bump_gen();
	printf("{\"id\":%s,\"ok\":true,\"removed\":%d}\n", id, removed);
}

static void do_list(const char *id)
{
	__u64 key, next, *prev = NULL;
	int first = 1;

	printf("{\"id\":%s,\"ok\":true,\"slos\":[", id);
	while (!bpf_map_get_next_key(maps.slo, prev, &next)) {
		struct slo_cfg cfg;

		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(maps.slo, &key, &cfg))
			continue;
		printf("%s{\"cgroup_id\":\"%llu\",\"budget_ns\":%llu,\"importance\":%u}",
		       first ? "" : ",", (unsigned long long)key, (unsigned long long)cfg.budget_ns,
		       cfg.importance);
		first = 0;
	}
	fputs("]}\n", stdout);
}

/* One SLO map entry: {"slo":{...}} or {"slo":null} when the cgroup has none. */
static void do_get(const char *id, char **w, int n)
{
	struct slo_cfg cfg;
	__u64 cg;

	if (n != 1 || parse_u64(w[0], &cg)) {
		reply_error(id, "get takes one cgroup id");
		return;
	}
	if (bpf_map_lookup_elem(maps.slo, &cg, &cfg)) {
		printf("{\"id\":%s,\"ok\":true,\"slo\":null}\n", id);
		return;
	}
	printf("{\"id\":%s,\"ok\":true,\"slo\":{\"cgroup_id\":\"%llu\",\"budget_ns\":%llu,"
	       "\"importance\":%u}}\n",
	       id, (unsigned long long)cg, (unsigned long long)cfg.budget_ns, cfg.importance);
}

/* Runs and misses per SLO cgroup only: what the overload window samples, without histograms. */
static void do_counts(const char *id)
{
	__u64 key, next, *prev = NULL;
	struct cg_stats st;
	int first = 1;

	printf("{\"id\":%s,\"ok\":true,\"cgroups\":[", id);
	while (!bpf_map_get_next_key(maps.stats, prev, &next)) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(maps.stats, &key, &st))
			continue;
		printf("%s{\"cgroup_id\":\"%llu\",\"runs\":%llu,\"misses\":%llu}", first ? "" : ",",
		       (unsigned long long)key, (unsigned long long)st.runs,
		       (unsigned long long)st.misses);
		first = 0;
	}
	fputs("]}\n", stdout);
}

static void do_stats(const char *id)
{
	__u64 key, next, *prev = NULL;
	struct cg_stats st;
	int first = 1, i, last;

	printf("{\"id\":%s,\"ok\":true,\"hist_buckets\":%d,", id, HIST_BUCKETS);
	write_counters(stdout, maps.counters);
	fputs(",\"cgroups\":[", stdout);
	while (!bpf_map_get_next_key(maps.stats, prev, &next)) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(maps.stats, &key, &st))
			continue;
		printf("%s{\"cgroup_id\":\"%llu\",\"runs\":%llu,\"wait_sum_ns\":%llu,"
		       "\"wait_max_ns\":%llu,\"misses\":%llu,\"budget_ns\":%llu,\"importance\":%llu,"
		       "\"hist\":[",
		       first ? "" : ",", (unsigned long long)key, (unsigned long long)st.runs,
		       (unsigned long long)st.wait_sum_ns, (unsigned long long)st.wait_max_ns,
		       (unsigned long long)st.misses, (unsigned long long)st.budget_ns,
		       (unsigned long long)st.importance);
		/* Trailing empty buckets are left out; the reader pads to hist_buckets. */
		for (last = HIST_BUCKETS - 1; last >= 0 && !st.hist[last]; last--)
			;
		for (i = 0; i <= last; i++)
			printf("%s%llu", i ? "," : "", (unsigned long long)st.hist[i]);
		fputs("]}", stdout);
		first = 0;
	}
	fputs("]}\n", stdout);
}

/* Every {SLO cgroup, cgroup} pair of the observer's offenders map, unsorted. */
static void do_offenders(const char *id)
{
	struct offender_key key, next, *prev = NULL;
	int first = 1;

	if (maps.offenders < 0) {
		reply_error(id, "no offenders map here: only the observer keeps one "
				"(scx-slo-loader observe)");
		return;
	}
	printf("{\"id\":%s,\"ok\":true,\"offenders\":[", id);
	while (!bpf_map_get_next_key(maps.offenders, prev, &next)) {
		struct offender_stats st;

		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(maps.offenders, &key, &st))
			continue;
		printf("%s{\"slo_cgroup_id\":\"%llu\",\"cgroup_id\":\"%llu\",\"waits\":%llu,"
		       "\"wait_ns\":%llu,\"misses\":%llu,\"miss_ns\":%llu,\"last_wait_ns\":%llu}",
		       first ? "" : ",", (unsigned long long)key.slo_cgid,
		       (unsigned long long)key.cgid, (unsigned long long)st.waits,
		       (unsigned long long)st.wait_ns, (unsigned long long)st.misses,
		       (unsigned long long)st.miss_ns, (unsigned long long)st.last_wait_ns);
		first = 0;
	}
	fputs("]}\n", stdout);
}

static void handle_line(char *line)
{
	char *w[MAX_WORDS], *save = NULL, *tok;
	int n = 0;

	for (tok = strtok_r(line, " \t\r", &save); tok && n < MAX_WORDS;
	     tok = strtok_r(NULL, " \t\r", &save))
		w[n++] = tok;
	if (n == 0)
		return;
	if (n < 2 || strspn(w[0], "0123456789") != strlen(w[0])) {
		reply_error("null", "request must be: <numeric id> <verb> [args]");
		return;
	}
	if (!strcmp(w[1], "ping")) {
		printf("{\"id\":%s,\"ok\":true}\n", w[0]);
		return;
	}
	if (ensure_maps()) {
		char msg[PATH_MAX + 80];

		if (!strcmp(w[1], "status")) {
			printf("{\"id\":%s,\"ok\":true,", w[0]);
			write_status_fields(stdout, pin_dir, NULL);
			fputs("}\n", stdout);
			return;
		}
		snprintf(msg, sizeof(msg),
			 "no scx_slo maps pinned at %s: load the scheduler (or the observer) first",
			 pin_dir);
		reply_error(w[0], msg);
		return;
	}
	if (!strcmp(w[1], "set"))
		do_set(w[0], w + 2, n - 2);
	else if (!strcmp(w[1], "del"))
		do_del(w[0], w + 2, n - 2);
	else if (!strcmp(w[1], "list"))
		do_list(w[0]);
	else if (!strcmp(w[1], "stats"))
		do_stats(w[0]);
	else if (!strcmp(w[1], "counts"))
		do_counts(w[0]);
	else if (!strcmp(w[1], "get"))
		do_get(w[0], w + 2, n - 2);
	else if (!strcmp(w[1], "offenders"))
		do_offenders(w[0]);
	else if (!strcmp(w[1], "status")) {
		printf("{\"id\":%s,\"ok\":true,", w[0]);
		write_status_fields(stdout, pin_dir, &maps);
		fputs("}\n", stdout);
	} else
		reply_error(w[0],
			    "unknown verb (set, del, get, list, stats, counts, offenders, status, ping)");
}

int cmd_serve(const char *dir)
{
	static char buf[1 << 20];
	size_t len = 0;

	pin_dir = dir;
	ensure_maps();
	setvbuf(stdout, NULL, _IOFBF, 1 << 16);
	for (;;) {
		struct pollfd fds[2] = { { .fd = 0, .events = POLLIN } };
		int nfds = 1, r;

		if (rb) {
			fds[1].fd = ring_buffer__epoll_fd(rb);
			fds[1].events = POLLIN;
			nfds = 2;
		}
		/* Without the maps yet, look for them again shortly; with them, wait for input. */
		r = poll(fds, (nfds_t)nfds, rb ? -1 : 200);
		if (r < 0 && errno != EINTR)
			return fail("poll: %s", strerror(errno));
		if (rb)
			ring_buffer__consume(rb);
		if (fds[0].revents & (POLLIN | POLLHUP)) {
			ssize_t got = read(0, buf + len, sizeof(buf) - 1 - len);
			char *start = buf, *nl;

			if (got <= 0) {
				fflush(stdout);
				return 0; /* the agent went away; the pinned scheduler stays */
			}
			len += (size_t)got;
			buf[len] = 0;
			while ((nl = memchr(start, '\n', len - (size_t)(start - buf)))) {
				*nl = 0;
				handle_line(start);
				start = nl + 1;
			}
			len -= (size_t)(start - buf);
			memmove(buf, start, len);
			if (len == sizeof(buf) - 1) {
				reply_error("null", "request line too long");
				len = 0;
			}
		}
		fflush(stdout);
	}
}
