/** An instance spec whose one flow answers GET /echo with "still here": a runtime that serves is one that answers it. */
import { randomUUID } from "node:crypto";
import type { InstanceSpec } from "../../bridge/drivers/driver.ts";

export const echoFlow = [
  { id: "t1", type: "tab", label: "echo" },
  { id: "in1", type: "http in", z: "t1", url: "/echo", method: "get", wires: [["fn1"]] },
  { id: "fn1", type: "change", z: "t1", rules: [{ t: "set", p: "payload", pt: "msg", to: "still here", tot: "str" }], wires: [["out1"]] },
  { id: "out1", type: "http response", z: "t1", statusCode: "200", wires: [] },
];

export const echoSpec = (namePrefix: string): InstanceSpec => ({
  id: randomUUID(), name: `${namePrefix}-${randomUUID().slice(0, 6)}`, flows: echoFlow, resources: {}, env: {},
  credentialSecret: "a-credential-secret-of-some-length",
});
