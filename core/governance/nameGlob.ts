/**
 * Policy `namePattern` globs (`*` any run of characters, everything else
 * literal), matched by two-pointer wildcard matching instead of a regular
 * expression: `*a*a*a*…b` compiled to a backtracking regex blocked the Worker
 * for over a second (issue 12). Here the work is at most
 * (pattern + 1) × (name + 1) steps: on a mismatch only the latest `*` is
 * retried, one character further on, because an earlier `*` can never do
 * better than the latest one already does.
 */

/** `steps`, when given, counts the loop's iterations (tests prove the bound with it). */
export function globMatches(pattern: string, name: string, steps?: { count: number }): boolean {
  let p = 0, n = 0;
  // The latest `*` seen and the name position it currently stands for the end of.
  let star = -1, resume = 0;
  while (n < name.length) {
    if (steps) steps.count++;
    if (p < pattern.length && pattern[p] === "*") {
      star = p++;
      resume = n;
    } else if (p < pattern.length && pattern[p] === name[n]) {
      p++;
      n++;
    } else if (star >= 0) {
      p = star + 1;
      n = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === "*") p++;
  return p === pattern.length;
}
