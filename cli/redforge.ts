/**
 * `redforge`: the CLI a CI job drives the fleet with (docs/ci.md). Parses the
 * command line, runs one command on the generated API client and exits with
 * a code the job can branch on (exitCodes.ts).
 */
import { parseCommandLine, USAGE, UsageError } from "./args.ts";
import { ApiFailure, Commands, type Io } from "./commands.ts";
import { EXIT, type ExitCode } from "./exitCodes.ts";

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

export async function main(argv: readonly string[], env: Record<string, string | undefined>, io: Io): Promise<ExitCode> {
  let parsed;
  try {
    parsed = parseCommandLine(argv, env);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.note(`redforge: ${err.message}`);
    io.note("Run redforge help for usage.");
    return EXIT.usage;
  }
  const { command, globals } = parsed;
  if (command.kind === "help") {
    io.out(USAGE);
    return EXIT.completed;
  }
  try {
    return await new Commands(globals, io).run(command);
  } catch (err) {
    if (err instanceof UsageError) {
      io.note(`redforge: ${err.message}`);
      return EXIT.usage;
    }
    if (err instanceof ApiFailure) {
      if (globals.json) io.out(JSON.stringify({ error: { status: err.status, code: err.code, message: err.message } }, null, 2));
      io.note(`redforge: ${err.message} (${err.status} ${err.code})`);
      return EXIT.api;
    }
    // fetch failed: the control plane is not there (or not at this URL).
    const cause = (err as { cause?: { code?: string } }).cause?.code;
    io.note(`redforge: cannot reach ${globals.url}: ${(err as Error).message}${cause ? ` (${cause})` : ""}`);
    return EXIT.api;
  }
}

/** The bin's entry (bin/redforge.mjs). */
export async function runCli(): Promise<void> {
  const json = process.argv.includes("--json");
  const io: Io = {
    out: (line) => process.stdout.write(`${line}\n`),
    note: (line) => (json ? process.stderr : process.stdout).write(`${line}\n`),
    readStdin,
  };
  process.exitCode = await main(process.argv.slice(2), process.env, io);
}
