/**
 * The signed-in session. The token is a short-lived session JWT (JWT_TTL_SECONDS,
 * 15 minutes by default) kept in memory and mirrored to sessionStorage only, so a
 * reload keeps the person signed in but closing the tab forgets it; nothing
 * long-lived ever reaches localStorage. There is no refresh token: when the JWT
 * expires the next call answers 401 and the console asks for the password again,
 * returning to the page the person was on.
 */
import { createSignal } from "solid-js";
import type { components } from "../../../protocol/api/client.ts";

export type Session = components["schemas"]["Session"];

const KEY = "redforge.session";

function restore(): Session | null {
  try {
    const raw = sessionStorage.getItem(KEY);
    if (!raw) return null;
    const s = JSON.parse(raw) as Session;
    return Date.parse(s.expiresAt) > Date.now() ? s : null;
  } catch {
    return null;
  }
}

const [session, setSession] = createSignal<Session | null>(restore());
/** True when the API ended the session (401), so the login page can say why it is back. */
const [expired, setExpired] = createSignal(false);
export { expired, session };

export function signIn(s: Session): void {
  try { sessionStorage.setItem(KEY, JSON.stringify(s)); } catch { /* private mode: memory only */ }
  setExpired(false);
  setSession(s);
}

export function signOut(opts: { expired?: boolean } = {}): void {
  try { sessionStorage.removeItem(KEY); } catch { /* nothing stored */ }
  // Several calls in flight may each answer 401: the first one, which ends a live session, decides.
  if (session() !== null) setExpired(!!opts.expired);
  setSession(null);
}

export const token = (): string | null => session()?.token ?? null;
