// Hears cgroups appear and go, in the folders that matter, as inotify events (fs.watch) rather
// than by walking the tree on a timer. The folders are the ones resolveRules names: where a cgroup
// created or removed could change which cgroups the rules match. A change is reported once per
// burst; the caller resolves the rules again and sets the new folders.
//
// Only entries created, removed or renamed count. cgroupfs also reports writes to interface files
// (cgroup.events changes whenever a process enters or leaves), and enabling a controller creates
// interface files in each child: neither is a cgroup, so both are ignored.

import { watch, type FSWatcher } from "node:fs";
import path from "node:path";

/** Interface files the kernel makes in every cgroup folder: never a cgroup of their own. */
const INTERFACE_FILE =
  /^(cgroup|cpu|cpuset|io|memory|pids|hugetlb|rdma|misc|freezer|net_cls|net_prio|perf_event)\./;

export interface CgroupWatchOptions {
  /** The cgroup2 mount. */
  readonly root: string;
  /** Called after something was created or removed in a watched folder. */
  readonly onChange: (folder: string) => void;
  /** At most this many folders are watched; past it, onOverflow is told once per setFolders. */
  readonly maxWatches?: number;
  readonly onOverflow?: (wanted: number) => void;
}

export class CgroupWatcher {
  private readonly watchers = new Map<string, FSWatcher>();
  private closed = false;

  constructor(private readonly o: CgroupWatchOptions) {}

  /** Number of folders watched now. */
  get size(): number {
    return this.watchers.size;
  }

  /** Watches exactly these folders (relative to the root, "" for the root itself). */
  setFolders(folders: ReadonlySet<string>): void {
    if (this.closed) return;
    const max = this.o.maxWatches ?? 8192;
    for (const [folder, w] of this.watchers) {
      if (!folders.has(folder)) {
        w.close();
        this.watchers.delete(folder);
      }
    }
    let wanted = 0;
    for (const folder of folders) {
      wanted++;
      if (this.watchers.has(folder)) continue;
      if (this.watchers.size >= max) continue;
      this.add(folder);
    }
    if (wanted > max) this.o.onOverflow?.(wanted);
  }

  close(): void {
    this.closed = true;
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }

  private add(folder: string): void {
    let w: FSWatcher;
    try {
      w = watch(path.join(this.o.root, folder), { persistent: false }, (event, name) => {
        if (event !== "rename") return;
        if (name !== null && INTERFACE_FILE.test(name)) return;
        this.o.onChange(folder);
      });
    } catch {
      // Gone between the resolve and now: the parent's watch reports it, or the next resolve.
      return;
    }
    w.on("error", () => {
      // The folder was removed: its parent's watch saw that, and the next resolve drops it.
      w.close();
      if (this.watchers.get(folder) === w) this.watchers.delete(folder);
    });
    this.watchers.set(folder, w);
  }
}
