// Shell entry to the VM harness:
//   node dist/vm/cli.js [--cpus N] [--memory MiB] [--timeout SECONDS] [--out DIR] [--quiet]
//                       [--kernel-arg WORD ...] [--kernel-dir DIR] -- COMMAND...
// Prints the guest's console as it runs, then exits with the command's exit status.
import { parseArgs } from "node:util";
import { runInVm, VmError } from "./harness.js";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    cpus: { type: "string", default: "2" },
    memory: { type: "string", default: "2048" },
    timeout: { type: "string", default: "300" },
    out: { type: "string" },
    quiet: { type: "boolean", default: false },
    /** Extra kernel command-line words, e.g. loglevel=7 to see warnings `quiet` hides. */
    "kernel-arg": { type: "string", multiple: true, default: [] },
    /** Boot another kernel folder (vm/fetch-lts-kernel.sh prints one) instead of the cached one. */
    "kernel-dir": { type: "string" },
  },
});
if (positionals.length === 0) {
  console.error(
    "usage: vm/cli.js [--cpus N] [--memory MiB] [--timeout S] [--out DIR] [--kernel-arg W] -- COMMAND",
  );
  process.exit(2);
}
try {
  const result = await runInVm({
    command: positionals.join(" "),
    cpus: Number(values.cpus),
    memoryMiB: Number(values.memory),
    timeoutMs: Number(values.timeout) * 1000,
    outDir: values.out,
    kernelArgs: values["kernel-arg"],
    kernelDir: values["kernel-dir"],
    onOutput: values.quiet ? undefined : (chunk) => process.stdout.write(chunk),
  });
  if (values.quiet) process.stdout.write(result.output);
  console.error(
    `[vm] exit ${result.exitCode}; boot to command ${result.bootToCommandMs} ms; wall ${result.wallMs} ms; files in ${result.outDir}`,
  );
  process.exit(result.exitCode);
} catch (err) {
  if (err instanceof VmError) {
    console.error(`[vm] error: ${err.message}`);
    process.exit(125);
  }
  throw err;
}
