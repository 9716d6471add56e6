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
export { session };

export function signIn(s: Session): void {
  try { sessionStorage.setItem(KEY, JSON.stringify(s)); } catch { /* private mode: memory only */ }
  setSession(s);
}

export function signOut(): void {
  try { sessionStorage.removeItem(KEY); } catch { /* nothing stored */ }
  setSession(null);
}

export const token = (): string | null => session()?.token ?? null;
