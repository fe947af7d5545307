// SPDX-License-Identifier: GPL-2.0
/*
 * The layout identity of a build, and what the loader does with it.
 *
 * The link and maps are pinned so that the scheduler outlives the agent; an upgrade is therefore
 * exactly when a build meets maps pinned by another. libbpf reuses a pinned map when its type, key
 * and value sizes, entries and flags match, so a field moved inside a value of the same size, or
 * a map whose meaning changed, would be reused and misread. Every build therefore has an identity:
 * SCX_SLO_ABI_VERSION (carried in the object's .rodata) and a hash computed here from the
 * object's BTF over every pinned map (name, type, sizes, entries, flags, and each member of the
 * key and value types, recursively). The loader pins it in layout_map beside the maps it describes
 * and compares before it reuses them: equal, the pins are this build's; different or absent (pins
 * of a build without an identity), they are another's and are replaced, never reused.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL
/* Deep enough for any struct in a map value; a cycle (through pointers) cannot recurse past it. */
#define MAX_TYPE_DEPTH 8

static void mix(__u64 *h, const void *data, size_t n)
{
	const unsigned char *p = data;
	size_t i;

	for (i = 0; i < n; i++) {
		*h ^= p[i];
		*h *= FNV_PRIME;
	}
}

static void mix_u64(__u64 *h, __u64 v)
{
	mix(h, &v, sizeof(v));
}

static void mix_str(__u64 *h, const char *s)
{
	mix(h, s, strlen(s) + 1);
}

/* A type as it lies in memory: kind, size, and for aggregates each member's name, offset, type. */
static void mix_type(__u64 *h, const struct btf *btf, __u32 id, int depth)
{
	const struct btf_type *t;
	int rid, i;

	if (depth > MAX_TYPE_DEPTH || !id) {
		mix_u64(h, 0);
		return;
	}
	rid = btf__resolve_type(btf, id); /* past typedefs and qualifiers */
	t = rid < 0 ? NULL : btf__type_by_id(btf, (__u32)rid);
	if (!t) {
		mix_u64(h, ~0ULL);
		return;
	}
	mix_u64(h, btf_kind(t));
	mix_u64(h, (__u64)btf__resolve_size(btf, (__u32)rid));
	if (btf_is_int(t)) {
		mix_u64(h, btf_int_encoding(t));
		mix_u64(h, btf_int_bits(t));
	} else if (btf_is_array(t)) {
		mix_u64(h, btf_array(t)->nelems);
		mix_type(h, btf, btf_array(t)->type, depth + 1);
	} else if (btf_is_composite(t)) {
		const struct btf_member *m = btf_members(t);

		mix_u64(h, btf_vlen(t));
		for (i = 0; i < btf_vlen(t); i++, m++) {
			mix_str(h, btf__name_by_offset(btf, m->name_off));
			mix_u64(h, btf_member_bit_offset(t, i));
			mix_u64(h, btf_member_bitfield_size(t, i));
			mix_type(h, btf, m->type, depth + 1);
		}
	}
}

struct map_hash {
	const char *name;
	__u64 hash;
};

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct map_hash *)a)->name, ((const struct map_hash *)b)->name);
}

void *rodata_var(struct bpf_object *obj, const char *name, size_t size)
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
		return NULL;
	id = btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC);
	if (id < 0)
		return NULL;
	sec = btf__type_by_id(btf, (__u32)id);
	data = bpf_map__initial_value(rodata, &map_size);
	vs = btf_var_secinfos(sec);
	for (i = 0; data && i < btf_vlen(sec); i++, vs++) {
		const struct btf_type *var = btf__type_by_id(btf, vs->type);

		if (strcmp(btf__name_by_offset(btf, var->name_off), name))
			continue;
		if (vs->size != size || vs->offset + size > map_size)
			return NULL;
		return data + vs->offset;
	}
	return NULL;
}

int object_layout(struct bpf_object *obj, struct slo_layout *out)
{
	const struct btf *btf = bpf_object__btf(obj);
	struct map_hash maps[MAX_PINNED_MAPS];
	const __u32 *abi = rodata_var(obj, "scx_slo_abi_version", sizeof(__u32));
	struct bpf_map *map;
	__u64 h = FNV_OFFSET;
	int n = 0, i;

	if (!btf)
		return -ENOENT;
	bpf_object__for_each_map(map, obj) {
		__u64 mh = FNV_OFFSET;

		if (!bpf_map__pin_path(map))
			continue;
		if (n == MAX_PINNED_MAPS)
			return -E2BIG;
		mix_u64(&mh, bpf_map__type(map));
		mix_u64(&mh, bpf_map__key_size(map));
		mix_u64(&mh, bpf_map__value_size(map));
		mix_u64(&mh, bpf_map__max_entries(map));
		mix_u64(&mh, bpf_map__map_flags(map));
		mix_type(&mh, btf, bpf_map__btf_key_type_id(map), 0);
		mix_type(&mh, btf, bpf_map__btf_value_type_id(map), 0);
		maps[n].name = bpf_map__name(map);
		maps[n++].hash = mh;
	}
	/* By name: two builds that declare the same maps in another order have the same layout. */
	qsort(maps, (size_t)n, sizeof(maps[0]), by_name);
	out->abi_version = abi ? *abi : 0;
	mix_u64(&h, out->abi_version);
	for (i = 0; i < n; i++) {
		mix_str(&h, maps[i].name);
		mix_u64(&h, maps[i].hash);
	}
	out->layout_hash = h;
	return 0;
}

int pinned_layout(const char *pin_dir, struct slo_layout *out)
{
	int fd = open_pinned_map(pin_dir, LAYOUT_PIN), err = 0;
	__u32 zero = 0;

	if (fd < 0)
		return -ENOENT;
	if (bpf_map_lookup_elem(fd, &zero, out))
		err = -errno;
	close(fd);
	return err;
}

/* Map pins in pin_dir besides the layout and the link. */
static int map_pins_present(const char *pin_dir)
{
	DIR *dir = opendir(pin_dir);
	struct dirent *e;
	int n = 0;

	while (dir && (e = readdir(dir)))
		if (e->d_name[0] != '.' && strcmp(e->d_name, "link") && strcmp(e->d_name, LAYOUT_PIN))
			n++;
	if (dir)
		closedir(dir);
	return n;
}

enum pins_match match_pins(const char *pin_dir, const struct slo_layout *obj,
			   struct slo_layout *pinned, bool *pinned_known)
{
	*pinned_known = pinned_layout(pin_dir, pinned) == 0;
	if (!map_pins_present(pin_dir))
		return PINS_NONE;
	if (*pinned_known && pinned->abi_version == obj->abi_version &&
	    pinned->layout_hash == obj->layout_hash)
		return PINS_SAME;
	return PINS_OTHER;
}

int write_layout_pin(const char *pin_dir, const struct slo_layout *l)
{
	char path[PATH_MAX];
	__u32 zero = 0;
	int fd, err = 0;

	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, LAYOUT_PIN, sizeof(__u32), sizeof(*l), 1, NULL);
	if (fd < 0)
		return -errno;
	snprintf(path, sizeof(path), "%s/%s", pin_dir, LAYOUT_PIN);
	if (bpf_map_update_elem(fd, &zero, l, BPF_ANY))
		err = -errno;
	if (!err) {
		unlink(path);
		if (bpf_obj_pin(fd, path))
			err = -errno;
	}
	close(fd);
	return err;
}

void json_layout(FILE *f, const struct slo_layout *l)
{
	if (!l) {
		fputs("null", f);
		return;
	}
	fprintf(f, "{\"abi\":%llu,\"hash\":\"%016llx\"}", (unsigned long long)l->abi_version,
		(unsigned long long)l->layout_hash);
}

/*
 * `status`'s "layout" field: the pinned identity, this build's (from the object, if it opens),
 * and whether they are the same (null when either is unknown or nothing is pinned).
 */
void write_layout_status(FILE *f, const char *pin_dir, const char *obj_path)
{
	struct slo_layout pinned, mine;
	bool pinned_known, have_mine = false;
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_dir);
	struct bpf_object *obj = bpf_object__open_file(obj_path, &opts);
	enum pins_match match = PINS_NONE;

	if (obj) {
		have_mine = object_layout(obj, &mine) == 0;
		bpf_object__close(obj);
	}
	if (have_mine)
		match = match_pins(pin_dir, &mine, &pinned, &pinned_known);
	else
		pinned_known = pinned_layout(pin_dir, &pinned) == 0;
	fputs(",\"layout\":{\"pinned\":", f);
	json_layout(f, pinned_known ? &pinned : NULL);
	fputs(",\"object\":", f);
	json_layout(f, have_mine ? &mine : NULL);
	fprintf(f, ",\"compatible\":%s}",
		!have_mine || match == PINS_NONE ? "null" : match == PINS_SAME ? "true" : "false");
}
