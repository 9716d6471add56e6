import fs from "node:fs/promises";

/** CPU seconds (user + system) used so far by every process whose command line matches. */
export async function cpuSecondsOf(match: RegExp): Promise<number> {
  const ticksPerSecond = 100; // USER_HZ on Linux
  let total = 0;
  for (const pid of await fs.readdir("/proc").catch(() => [] as string[])) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const cmd = (await fs.readFile(`/proc/${pid}/cmdline`, "utf8")).replace(/\0/g, " ");
      if (!match.test(cmd)) continue;
      const stat = await fs.readFile(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      total += (Number(fields[11]) + Number(fields[12])) / ticksPerSecond; // utime, stime
    } catch {
      // The process ended while we looked.
    }
  }
  return total;
}
