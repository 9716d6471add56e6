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

/**
 * CPU seconds of this process's descendants whose name matches (this bench's stack only, not other suites'),
 * with their reaped children's (cutime/cstime): a Postgres backend lives one connection and is gone.
 */
export async function cpuOfOwn(match: RegExp): Promise<number> {
  const parent = new Map<number, number>();
  const stats = new Map<number, { name: string; cpu: number }>();
  for (const entry of await fs.readdir("/proc").catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await fs.readFile(`/proc/${entry}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      parent.set(Number(entry), Number(fields[1]));
      stats.set(Number(entry), { name: stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")), cpu: (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / 100 });
    } catch { /* gone */ }
  }
  const mine = (pid: number) => {
    for (let p = parent.get(pid), hops = 0; p !== undefined && hops < 20; p = parent.get(p), hops++) if (p === process.pid) return true;
    return false;
  };
  let total = 0;
  for (const [pid, st] of stats) if (match.test(st.name) && mine(pid)) total += st.cpu;
  return total;
}
