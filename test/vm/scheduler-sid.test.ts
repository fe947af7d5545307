// The scheduler's VM tests (scheduler-suite.ts) on a second kernel: Debian sid's newest 7.x
// (.cache/kernel/sid, resolved at setup like the default one), so a change that works on one
// kernel's sched_ext and not the other's shows up.
import { schedulerSuite } from "./scheduler-suite.js";

schedulerSuite("sid");
