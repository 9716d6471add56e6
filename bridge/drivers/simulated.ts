/**
 * A driver that runs nothing: instances "start" at once and report plausible
 * health. It exists so a benchmark can put 1,000 instances behind one real
 * bridge and measure the control plane, not Node-RED's start-up. Never used
 * for real clusters (the CLI does not offer it).
 */
import type { Driver, InstanceEndpoints, InstanceHealth, InstanceSpec, InstanceState, StatusListener } from "./driver.ts";

interface SimInstance {
  spec: InstanceSpec;
  state: InstanceState;
  replicas: number;
  rev: number;
  createdAt: number;
}

export class SimulatedDriver implements Driver {
  readonly kind = "process" as const;
  private readonly instances = new Map<string, SimInstance>();
  private readonly listeners: StatusListener[] = [];

  constructor(private readonly opts: { startDelayMs?: number } = {}) {}

  private get(id: string): SimInstance {
    const inst = this.instances.get(id);
    if (!inst) throw new Error(`instance ${id} is not known to this bridge`);
    return inst;
  }

  private set(id: string, state: InstanceState): void {
    this.get(id).state = state;
    for (const l of this.listeners) l(id, state);
  }

  private async delay(): Promise<void> {
    if (this.opts.startDelayMs) await new Promise((r) => setTimeout(r, this.opts.startDelayMs));
  }

  async create(spec: InstanceSpec): Promise<{ endpoints: InstanceEndpoints }> {
    this.instances.set(spec.id, { spec, state: "starting", replicas: 1, rev: 1, createdAt: Date.now() });
    await this.delay();
    this.get(spec.id).state = "running";
    // .invalid (RFC 2606) never resolves; the control plane accepts only http(s) endpoints.
    return { endpoints: { admin: `http://${spec.name}.simulated.invalid/` } };
  }

  async start(id: string) { await this.delay(); this.get(id).state = "running"; }
  async stop(id: string) { this.get(id).state = "stopped"; }
  async destroy(id: string) { this.instances.delete(id); }
  async scale(id: string, replicas: number) { this.get(id).replicas = replicas; this.get(id).state = replicas === 0 ? "stopped" : "running"; }

  async deployFlows(id: string): Promise<{ rev: string }> {
    return { rev: String(++this.get(id).rev) };
  }

  async health(id: string): Promise<InstanceHealth> {
    const inst = this.instances.get(id);
    const running = inst?.state === "running";
    // Counters that grow like a lightly loaded instance's (~5 msg/s, 1 % CPU), so a scrape carries every per-instance series.
    const secs = inst ? (Date.now() - inst.createdAt) / 1000 : 0;
    const n = Math.floor(secs * 5);
    return {
      instanceId: id, state: inst?.state ?? "unknown", live: running, ready: running,
      ...(running ? {
        rssBytes: 110e6 + Math.round(Math.random() * 10e6), heapUsedBytes: 40e6, flowsState: "start" as const,
        cpuSeconds: secs * 0.01, messages: { in: n, out: n, errors: Math.floor(n / 1000) },
        // Two flows: an agent taking most of the work, and its error path with the errors.
        flows: [
          { flowId: "sim-agent", in: n - Math.floor(n / 5), out: n - Math.floor(n / 5), errors: 0 },
          { flowId: "sim-errors", in: Math.floor(n / 5), out: Math.floor(n / 5), errors: Math.floor(n / 1000) },
        ],
      } : {}),
      missingNodeTypes: [], checkedAt: new Date().toISOString(),
    };
  }

  /** Test hook: the instance "crashes" (a status event, as a real driver sends). */
  crash(id: string, state: InstanceState = "failed"): void {
    this.set(id, state);
  }

  onStatus(listener: StatusListener): void {
    this.listeners.push(listener);
  }

  async close(): Promise<void> {
    this.instances.clear();
  }
}
