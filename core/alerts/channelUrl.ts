/**
 * Where an alert channel may send: http(s) to a public address. A channel's
 * URL is chosen by an admin but fetched by the control plane, so without this
 * check it could reach the control plane's own loopback, a private network or
 * a cloud metadata endpoint (169.254.169.254) and read the answer back through
 * the dead-letter record (SSRF). Checked on create and again before each
 * delivery. Literal addresses and local-only names are checked here; a public
 * name that resolves to a private address is not (Workers cannot resolve
 * names, and Cloudflare's fetch does not reach private networks).
 *
 * Development (ENVIRONMENT=development) may allow private destinations with
 * REDFORGE_ALERT_CHANNELS_ALLOW_PRIVATE=true: tests and `npm start` receive
 * notifications on loopback. Production ignores the setting.
 */
import type { Env } from "../env.ts";

/** Names that only mean something inside a host or site (RFC 6761, 6762, 8375; cloud metadata hosts). */
const LOCAL_SUFFIXES = [".localhost", ".local", ".internal", ".home.arpa", ".localdomain", ".intranet", ".lan"];

/** [first address, prefix length] of IPv4 ranges that are not the public internet (RFC 6890 and friends). */
const BLOCKED_V4: Array<[string, number]> = [
  ["0.0.0.0", 8], ["10.0.0.0", 8], ["100.64.0.0", 10], ["127.0.0.0", 8], ["169.254.0.0", 16], ["172.16.0.0", 12],
  ["192.0.0.0", 24], ["192.0.2.0", 24], ["192.88.99.0", 24], ["192.168.0.0", 16], ["198.18.0.0", 15], ["198.51.100.0", 24],
  ["203.0.113.0", 24], ["224.0.0.0", 4], ["240.0.0.0", 4],
];

const v4Number = (text: string): number | null => {
  const parts = text.split(".");
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) return null;
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
};

function blockedV4(n: number): boolean {
  return BLOCKED_V4.some(([base, bits]) => {
    const size = 2 ** (32 - bits);
    return Math.floor(n / size) === Math.floor(v4Number(base)! / size);
  });
}

/** The eight 16-bit groups of an IPv6 address as WHATWG URL prints it (compressed, lowercase, no dotted tail), or null. */
function v6Groups(text: string): number[] | null {
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const groups = (part: string) => (part === "" ? [] : part.split(":").map((g) => (/^[0-9a-f]{1,4}$/.test(g) ? parseInt(g, 16) : Number.NaN)));
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  const all = halves.length === 2 ? [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail] : head;
  return all.length === 8 && all.every((g) => Number.isInteger(g) && g >= 0) ? all : null;
}

function blockedV6(g: number[]): boolean {
  const [a, b] = [g[0]!, g[1]!];
  const zeroTo = (i: number) => g.slice(0, i).every((x) => x === 0);
  if (zeroTo(8)) return true; // ::
  if (zeroTo(7) && g[7] === 1) return true; // ::1
  const embeddedV4 = g[6]! * 65536 + g[7]!;
  if (zeroTo(5) && g[5] === 0xffff) return blockedV4(embeddedV4); // ::ffff:a.b.c.d, mapped
  if (zeroTo(6)) return true; // ::a.b.c.d, deprecated compatible
  if (a === 0x64 && b === 0xff9b && g.slice(2, 6).every((x) => x === 0)) return blockedV4(embeddedV4); // NAT64
  if ((a & 0xfe00) === 0xfc00) return true; // fc00::/7 unique local (AWS's fd00:ec2::254 metadata)
  if ((a & 0xffc0) === 0xfe80) return true; // fe80::/10 link-local
  if ((a & 0xff00) === 0xff00) return true; // multicast
  if (a === 0x2001 && b === 0x0db8) return true; // documentation
  if (a === 0x2002) return blockedV4(g[1]! * 65536 + g[2]!); // 6to4 of a private address
  return false;
}

export type ChannelUrlProblem = "scheme" | "credentials" | "private_address" | "local_name";

/** Why `url` may not be a channel's destination, or null when it may. */
export function channelUrlProblem(url: string): ChannelUrlProblem | null {
  let u: URL;
  try { u = new URL(url); } catch { return "scheme"; }
  if (u.protocol !== "http:" && u.protocol !== "https:") return "scheme";
  // user:pass@ in a URL ends up in logs and the audit row; a receiver's secret belongs in the signature.
  if (u.username || u.password) return "credentials";
  // WHATWG URL has already turned 0x7f.1, 2130706433 and 127.1 into 127.0.0.1, and lowercased the name.
  const host = u.hostname.replace(/\.$/, "");
  if (host.startsWith("[")) {
    const g = v6Groups(host.slice(1, -1));
    return !g || blockedV6(g) ? "private_address" : null;
  }
  const v4 = v4Number(host);
  if (v4 !== null) return blockedV4(v4) ? "private_address" : null;
  if (host === "localhost" || !host.includes(".") || LOCAL_SUFFIXES.some((s) => host.endsWith(s))) return "local_name";
  return null;
}

/** Whether this deployment lets channels point at private and loopback addresses (development only). */
export function privateChannelsAllowed(env: Pick<Env, "ENVIRONMENT" | "REDFORGE_ALERT_CHANNELS_ALLOW_PRIVATE">): boolean {
  return env.ENVIRONMENT === "development" && env.REDFORGE_ALERT_CHANNELS_ALLOW_PRIVATE === "true";
}

/** The problem that bars `url` here, given the deployment's setting; null when it may be used. */
export function channelUrlRefusal(url: string, env: Pick<Env, "ENVIRONMENT" | "REDFORGE_ALERT_CHANNELS_ALLOW_PRIVATE">): ChannelUrlProblem | null {
  const problem = channelUrlProblem(url);
  if (!problem) return null;
  if ((problem === "private_address" || problem === "local_name") && privateChannelsAllowed(env)) return null;
  return problem;
}

export const CHANNEL_URL_MESSAGES: Record<ChannelUrlProblem, string> = {
  scheme: "http or https URLs only",
  credentials: "the URL may not carry a user name or password",
  private_address: "the URL points at a loopback, private, link-local or reserved address; channels must reach a public address",
  local_name: "the URL names a local-only host (localhost, single-label, .local, .internal…); channels must reach a public address",
};
