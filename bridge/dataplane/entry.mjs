#!/usr/bin/env node
// The data plane process the bridge spawns (bridge/dataplane/launcher.ts): TypeScript run by tsx, as bin.mjs runs the bridge.
import { register } from "tsx/esm/api";

register();
const { runDataPlane } = await import("./main.ts");
await runDataPlane(process.argv.slice(2));
