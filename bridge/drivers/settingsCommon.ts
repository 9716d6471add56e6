/**
 * The parts of settings.js every driver generates alike, as JavaScript source
 * text: the static-token adminAuth and the runtime switches the bridge relies on.
 * The generated file must define `expected` (a Buffer of the admin token) and
 * require "crypto" before using ADMIN_AUTH.
 */

// A static bearer token, checked in settings.js: password logins through
// /auth/token would add a session to .sessions.json on every call (FACTS.md).
export const ADMIN_AUTH = `adminAuth: {
    type: "credentials",
    users: [],
    tokens: function (token) {
      const given = Buffer.from(String(token));
      const ok = given.length === expected.length && crypto.timingSafeEqual(given, expected);
      return Promise.resolve(ok ? { username: "redforge", permissions: "*" } : null);
    },
  },`;

// POST /flows/state (stop/start) is how the bridge pauses flows; /diagnostics feeds health;
// versions are managed by RedForge, so nothing phones home.
export const RUNTIME_SWITCHES = `runtimeState: { enabled: true, ui: false },
  diagnostics: { enabled: true, ui: false },
  telemetry: { enabled: false },`;

/** The environment that turns on the shared context store (both colours of an instance get the same values). */
export const ENV_CONTEXT_URL = "REDFORGE_CONTEXT_URL";
export const ENV_CONTEXT_TOKEN = "REDFORGE_CONTEXT_TOKEN";

/**
 * `contextStorage`: `stores` as given, plus `shared` (flows/node-package/lib/sharedContextStore.js,
 * loaded from `modulePath`) when the bridge passed a store URL. The key prefix is the
 * instance, not the runtime, so blue and green read and write the same context.
 */
export function contextStorage(modulePath: string, stores: string): string {
  return `contextStorage: Object.assign({ ${stores} }, process.env.${ENV_CONTEXT_URL} ? {
    shared: { module: require(${JSON.stringify(modulePath)}), config: {
      url: process.env.${ENV_CONTEXT_URL}, token: process.env.${ENV_CONTEXT_TOKEN},
      prefix: "redforge:context:" + process.env.REDFORGE_INSTANCE_ID + ":" } },
  } : {}),`;
}
