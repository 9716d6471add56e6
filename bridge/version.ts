import { readFileSync } from "node:fs";

/** The bridge ships with the repository, so its version is the package's; the control plane shows it per cluster. */
export const BRIDGE_VERSION: string = (() => {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version?: unknown };
    return typeof pkg.version === "string" ? pkg.version : "0.0.0";
  } catch {
    return "0.0.0";
  }
})();
