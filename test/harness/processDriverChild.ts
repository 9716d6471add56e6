/**
 * A process driver in a process of its own, for tests that kill it (a bridge
 * crash without the rest of the bridge): creates one instance, prints its
 * Admin API URL and waits to be killed.
 * Run: node --import tsx test/harness/processDriverChild.ts <stateDir> <spec JSON>
 */
import { ProcessDriver } from "../../bridge/drivers/process/index.ts";
import type { InstanceSpec } from "../../bridge/drivers/driver.ts";

const [stateDir, specJson] = process.argv.slice(2);
if (!stateDir || !specJson) throw new Error("usage: processDriverChild.ts <stateDir> <spec JSON>");
// No adminToken: the one in <stateDir>/admin-token, as the bridge's driver uses.
const driver = new ProcessDriver({ stateDir });
const { endpoints } = await driver.create(JSON.parse(specJson) as InstanceSpec);
console.log(`running at ${endpoints.admin}`);
setInterval(() => { /* until killed */ }, 60_000);
