/**
 * The control plane's version: package.json's, bundled into the Worker at
 * build time (wrangler's esbuild inlines the JSON), so /api/health says which
 * release answers. The bridge reports its own (bridge/version.ts) per cluster.
 */
import pkg from "../package.json";

export const CONTROL_PLANE_VERSION: string = typeof pkg.version === "string" ? pkg.version : "0.0.0";
