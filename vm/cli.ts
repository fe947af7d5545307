// Shell entry to the VM harness:
//   node dist/vm/cli.js [--cpus N] [--memory MiB] [--timeout SECONDS] [--out DIR] [--quiet]
//                       [--kernel-arg WORD ...] [--kernel-dir DIR] -- COMMAND...
// Prints the guest's console as it runs, then exits with the command's exit status.
import { intOption, parseOptions, UsageError } from "../src/util/args.js";
import { runInVm, VmError } from "./harness.js";

const USAGE = `usage: node dist/vm/cli.js [OPTIONS] -- COMMAND...
Boots the sched_ext kernel in QEMU with the host's root file system (read-only), runs COMMAND
in the guest as root, prints the guest's console, and exits with COMMAND's exit status
(125: the VM itself failed).

  --cpus N            virtual CPUs (default 2)
  --memory MiB        guest memory (default 2048)
  --timeout SECONDS   give up after this long (default 300)
  --out DIR           keep the run's files here (default: a new folder under the cache)
  --quiet             print the console only at the end
  --kernel-arg WORD   an extra kernel command-line word, e.g. loglevel=7 (repeatable)
  --kernel-dir DIR    boot another kernel folder (vm/fetch-lts-kernel.sh prints one)
  -h, --help          this text
`;

function parseCommandLine(args: string[]) {
  const { values, positionals } = parseOptions(
    args,
    {
      help: { type: "boolean", short: "h" },
      cpus: { type: "string", default: "2" },
      memory: { type: "string", default: "2048" },
      timeout: { type: "string", default: "300" },
      out: { type: "string" },
      quiet: { type: "boolean", default: false },
      "kernel-arg": { type: "string", multiple: true, default: [] },
      "kernel-dir": { type: "string" },
    },
    Infinity,
  );
  if (values.help) return null;
  if (positionals.length === 0) throw new UsageError("no COMMAND to run (put it after --)");
  return {
    command: positionals.join(" "),
    cpus: intOption("cpus", values.cpus, 1, 64),
    memoryMiB: intOption("memory", values.memory, 256, 65536),
    timeoutMs: intOption("timeout", values.timeout, 1, 86_400) * 1000,
    outDir: values.out,
    kernelArgs: values["kernel-arg"],
    kernelDir: values["kernel-dir"],
    quiet: values.quiet,
  };
}

let run: NonNullable<ReturnType<typeof parseCommandLine>>;
try {
  const parsed = parseCommandLine(process.argv.slice(2));
  if (parsed === null) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  run = parsed;
} catch (err) {
  if (!(err instanceof UsageError)) throw err;
  process.stderr.write(`vm/cli.js: ${err.message}\n${USAGE}`);
  process.exit(2);
}
try {
  const { quiet, ...options } = run;
  const result = await runInVm({
    ...options,
    onOutput: quiet ? undefined : (chunk) => process.stdout.write(chunk),
  });
  if (quiet) process.stdout.write(result.output);
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
