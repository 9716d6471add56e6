/**
 * Stored flow versions' flows (GET /api/deployments/versions/:id), read once
 * each: comparing v3 with v1, then v3 with v2, reads v3 once. A failed read
 * is forgotten, so the next comparison tries again.
 */
export type ReadVersion = (id: string) => Promise<{ flows: unknown[] } | { error: string }>;

export class VersionFlows {
  private readonly cache = new Map<string, Promise<unknown[]>>();

  constructor(private readonly read: ReadVersion) {}

  flows(id: string): Promise<unknown[]> {
    let hit = this.cache.get(id);
    if (!hit) {
      hit = this.read(id).then((r) => {
        if ("error" in r) throw new Error(r.error);
        return r.flows;
      });
      this.cache.set(id, hit);
      hit.catch(() => this.cache.delete(id));
    }
    return hit;
  }

  /** Both sides' flows, `before` first; the first failure's message when either read fails. */
  async pair(before: string, after: string): Promise<{ before: unknown[]; after: unknown[] } | { error: string }> {
    try {
      const [b, a] = await Promise.all([this.flows(before), this.flows(after)]);
      return { before: b, after: a };
    } catch (err) {
      return { error: (err as Error).message };
    }
  }
}
