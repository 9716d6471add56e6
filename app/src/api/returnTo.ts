/**
 * Where the login page sends a person back to. `next` comes from the address
 * bar, so only a path on this origin is followed (never `//host` or a full URL,
 * which would make the login page an open redirect), and never the login page.
 */
export function returnTo(next: string | string[] | undefined): string {
  const n = Array.isArray(next) ? next[0] : next;
  if (!n || !n.startsWith("/") || n.startsWith("//") || n.startsWith("/\\") || n.startsWith("/login")) return "/fleet";
  return n;
}
