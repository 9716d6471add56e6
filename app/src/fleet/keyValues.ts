/** `KEY=value` lines (env, secrets) into a record; the first bad line is the field's error. */
export function parseKeyValues(text: string): { values: Record<string, string> } | { error: string } {
  const values: Record<string, string> = {};
  const lines = text.split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
  for (const [n, line] of lines.entries()) {
    const eq = line.indexOf("=");
    if (eq <= 0) return { error: `line ${n + 1}: write KEY=value` };
    values[line.slice(0, eq).trim()] = line.slice(eq + 1);
  }
  return { values };
}
