#!/usr/bin/env node
// The `redforge` bin (`npx redforge …`, docs/ci.md): the CLI is TypeScript run by tsx, like the bridge's bin.
import { register } from "tsx/esm/api";

register();
const { runCli } = await import("../cli/redforge.ts");
await runCli();
