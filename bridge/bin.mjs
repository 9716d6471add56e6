#!/usr/bin/env node
// The `redforge-bridge` bin: the bridge is TypeScript run by tsx, like the rest of the Node side.
import { register } from "tsx/esm/api";

register();
const { runCli } = await import("./main.ts");
await runCli();
