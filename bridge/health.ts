/**
 * Health sweeps: asks the driver about each instance, a few at a time, and
 * shapes the answers to the wire schema. One instance that cannot be checked
 * is reported as `unknown` with the reason; it never sinks the whole sweep.
 */
import type { InstanceHealthWire } from "../protocol/reports.ts";
import type { Driver, InstanceHealth } from "./drivers/driver.ts";
import { errorMessage } from "./log.ts";

/** The wire schema's bound on instances per health.report. */
export const MAX_INSTANCES_PER_REPORT = 5000;

export async function collectHealth(driver: Driver, ids: readonly string[], concurrency = 8): Promise<InstanceHealthWire[]> {
  const out: InstanceHealthWire[] = new Array(ids.length);
  let next = 0;
  const worker = async () => {
    while (next < ids.length) {
      const i = next++;
      out[i] = await checkOne(driver, ids[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, ids.length) }, worker));
  return out;
}

async function checkOne(driver: Driver, instanceId: string): Promise<InstanceHealthWire> {
  try {
    return toWire(await driver.health(instanceId), instanceId);
  } catch (err) {
    return {
      instanceId, state: "unknown", live: false, ready: false, missingNodeTypes: [],
      checkedAt: new Date().toISOString(), error: `health check failed: ${errorMessage(err)}`.slice(0, 2000),
    };
  }
}

/** Clamps what a driver returns to the wire bounds, so one odd value cannot get the whole report refused. */
function toWire(h: InstanceHealth, instanceId: string): InstanceHealthWire {
  const wire: InstanceHealthWire = {
    instanceId,
    state: h.state,
    live: h.live,
    ready: h.ready,
    missingNodeTypes: h.missingNodeTypes.slice(0, 500),
    checkedAt: Number.isNaN(Date.parse(h.checkedAt)) ? new Date().toISOString() : new Date(h.checkedAt).toISOString(),
  };
  if (h.rssBytes !== undefined && h.rssBytes >= 0) wire.rssBytes = h.rssBytes;
  if (h.heapUsedBytes !== undefined && h.heapUsedBytes >= 0) wire.heapUsedBytes = h.heapUsedBytes;
  if (h.cpuSeconds !== undefined && Number.isFinite(h.cpuSeconds) && h.cpuSeconds >= 0) wire.cpuSeconds = h.cpuSeconds;
  if (h.messages) wire.messages = h.messages;
  if (h.flows) wire.flows = h.flows.slice(0, 100);
  if (h.flowsState) wire.flowsState = h.flowsState;
  if (h.error) wire.error = h.error.slice(0, 2000);
  return wire;
}

export function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out.length ? out : [[]];
}
