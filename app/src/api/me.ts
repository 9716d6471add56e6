/**
 * Who is signed in and what they may do (GET /api/auth/me), re-read whenever the
 * session changes. `can` hides what the API would refuse: a viewer never sees a
 * button that answers 403.
 */
import { createResource, createRoot } from "solid-js";
import { api } from "./api.ts";
import { allows, type Action } from "./permissions.ts";
import { session, token } from "./session.ts";

const me = createRoot(() => {
  const [caller] = createResource(token, async () => (await api.GET("/api/auth/me")).data ?? null);
  return caller;
});

/** Only the answer about the person signed in now: after a switch of user the last one's permissions never show. */
export const caller = () => {
  const c = me.latest;
  return c && c.id === session()?.user.id ? c : null;
};

export function can(resource: string, action: Action): boolean {
  const c = caller();
  return !!c && allows(c.permissions, resource, action);
}
