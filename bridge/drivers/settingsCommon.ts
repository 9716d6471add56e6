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
