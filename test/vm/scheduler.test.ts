// The scheduler's VM tests (scheduler-suite.ts) on the default kernel: Debian's newest 7.x from
// trixie-backports (.cache/kernel/current).
import { schedulerSuite } from "./scheduler-suite.js";

schedulerSuite("current");
