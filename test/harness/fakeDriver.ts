/**
 * A Driver that records every call, for bridge tests: what ran, how often,
 * with which arguments. Calls can be made to fail or to hang, and status
 * events can be raised as a real driver would on a crash.
 */
import type { Driver, InstanceEndpoints, InstanceHealth, InstanceSpec, InstanceState, StatusListener } from "../../bridge/drivers/driver.ts";

export interface DriverCall {
  method: keyof Driver;
  args: unknown[];
}

export class FakeDriver implements Driver {
  readonly kind = "process" as const;
  readonly calls: DriverCall[] = [];
  /** method → error to throw, or "hang" to never resolve. */
  readonly behaviour = new Map<string, Error | "hang">();
  closed = false;
  private readonly listeners: StatusListener[] = [];

  count(method: keyof Driver): number {
    return this.calls.filter((c) => c.method === method).length;
  }

  emit(instanceId: string, state: InstanceState, reason?: string): void {
    for (const l of this.listeners) l(instanceId, state, reason);
  }

  private async record(method: keyof Driver, ...args: unknown[]): Promise<void> {
    this.calls.push({ method, args });
    const b = this.behaviour.get(method);
    if (b === "hang") await new Promise(() => {});
    if (b) throw b;
  }

  async create(spec: InstanceSpec): Promise<{ endpoints: InstanceEndpoints }> {
    await this.record("create", spec);
    return { endpoints: { admin: `http://127.0.0.1:1880/${spec.name}` } };
  }
  async start(id: string) { await this.record("start", id); }
  async stop(id: string) { await this.record("stop", id); }
  async destroy(id: string, opts?: { deleteData?: boolean }) { await this.record("destroy", id, opts); }
  async scale(id: string, replicas: number) { await this.record("scale", id, replicas); }
  async deployFlows(id: string, flows: unknown[], opts?: { rev?: string }): Promise<{ rev: string }> {
    await this.record("deployFlows", id, flows, opts);
    return { rev: `rev-${this.count("deployFlows")}` };
  }
  async health(id: string): Promise<InstanceHealth> {
    await this.record("health", id);
    return { instanceId: id, state: "running", live: true, ready: true, flowsState: "start", rssBytes: 1e8, missingNodeTypes: [], checkedAt: new Date().toISOString() };
  }
  onStatus(listener: StatusListener): void {
    this.listeners.push(listener);
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}
