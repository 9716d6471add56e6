/**
 * The Content-Security-Policies, without imports: the Worker sets them
 * (securityHeaders.ts) and a Node test compares CONSOLE_CSP with the
 * console's app/public/_headers.
 */

/**
 * The console (app/, Vite + SolidJS): its own scripts and styles only, the API
 * and WebSockets on its own origin, never framed (clickjacking).
 */
export const CONSOLE_CSP = [
  "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "font-src 'self'",
  "connect-src 'self'", "object-src 'none'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
].join("; ");

/** HTML the Worker renders itself (/api/docs): no script at all, its one inline stylesheet, never framed. */
export const DOCUMENT_CSP = [
  "default-src 'none'", "style-src 'unsafe-inline'", "img-src data:", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
].join("; ");
