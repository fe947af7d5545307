// The import rules of src/ (`make lint` runs them). Layers, lowest first; a module may import its
// own folder and any lower layer, never a higher or a sibling one:
//
//   cli                         the commands
//   agent                       wiring and the control loop
//   sources  metrics  http      where rules come from, what is exported, how it is served
//   cgroup  sched               the cgroup tree, the scheduler and its loader
//   slo  api                    the SLO vocabulary, the wire types
//   util                        small helpers with no project knowledge
//
// shed/ is a separate program (the load-shedding sidecar): it may use only api/ and util/.
// docs/architecture.md explains the layers.
const LAYERS = [
  ["util"],
  ["slo", "api"],
  ["cgroup", "sched"],
  ["sources", "metrics", "http"],
  ["agent"],
  ["cli"],
];

const rank = new Map(LAYERS.flatMap((folders, i) => folders.map((f) => [f, i])));
const forbidden = [
  {
    name: "no-circular",
    severity: "error",
    comment: "Import cycles hide which module depends on which.",
    from: {},
    to: { circular: true },
  },
  {
    name: "src-is-self-contained",
    severity: "error",
    comment: "The product never imports tests, benchmarks or the VM harness.",
    from: { path: "^src/" },
    to: { path: "^(test|bench|vm)/" },
  },
  {
    name: "shed-stands-alone",
    severity: "error",
    comment: "The sidecar ships apart from the agent: api/ and util/ only.",
    from: { path: "^src/shed/" },
    to: { path: "^src/(?!shed/|api/|util/)" },
  },
  {
    name: "only-shed-imports-shed",
    severity: "error",
    comment: "Nothing in the agent depends on the sidecar.",
    from: { path: "^src/(?!shed/)" },
    to: { path: "^src/shed/" },
  },
];
for (const [folder, r] of rank) {
  const notBelow = [...rank].filter(([f, q]) => q >= r && f !== folder).map(([f]) => f);
  if (notBelow.length === 0) continue;
  forbidden.push({
    name: `layer-${folder}`,
    severity: "error",
    comment: `src/${folder}/ may import only lower layers (see the top of this file).`,
    from: { path: `^src/${folder}/` },
    to: { path: `^src/(${notBelow.join("|")})/` },
  });
}

module.exports = {
  forbidden,
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "^(dist|build|node_modules|bench/results)/" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
  },
};
