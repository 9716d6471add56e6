/**
 * Where the `shared` context store's code lives (flows/node-package/lib/sharedContextStore.js).
 * The process driver's settings.js requires it by path (same host); the kubernetes
 * driver ships its source in the instance's ConfigMap, since the pod's image has no copy.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const CONTEXT_STORE_MODULE = fileURLToPath(new URL("../../flows/node-package/lib/sharedContextStore.js", import.meta.url));
/** The file name in the ConfigMap (mounted at the seed dir). */
export const CONTEXT_STORE_FILE = "redforge-context-store.js";

let source: string | undefined;
/** Read once, on first use: a bridge without a context store never reads it. */
export function contextStoreSource(): string {
  return (source ??= readFileSync(CONTEXT_STORE_MODULE, "utf8"));
}
