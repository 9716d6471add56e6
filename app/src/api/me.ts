/**
 * Who is signed in and what they may do (GET /api/auth/me), re-read whenever the
 * session changes. `can` hides what the API would refuse: a viewer never sees a
 * button that answers 403.
 */
import { createResource, createRoot } from "solid-js";
import { api } from "./api.ts";
import { allows, type Action } from "./permissions.ts";
import { token } from "./session.ts";

const me = createRoot(() => {
  const [caller] = createResource(token, async () => (await api.GET("/api/auth/me")).data ?? null);
  return caller;
});

export const caller = () => me.latest ?? null;

export function can(resource: string, action: Action): boolean {
  const c = caller();
  return !!c && allows(c.permissions, resource, action);
}
