/**
 * The /ws/fleet fan-out after a hibernation wake-up: the object's in-memory
 * watcher cache is gone, so each socket's watcher comes back from its
 * attachment, and the permission filter and the access check still hold.
 */
import { env, runInDurableObject, SELF } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { openKv } from "../../core/platform/kv.ts";
import { ACCESS_REVOKED_CLOSE_CODE, markAccessChanged } from "../../core/platform/watcherAccess.ts";
import { fanOut, WatcherCache } from "../../durable/watchers.ts";
import { createUser } from "./helpers.ts";

const WAIT = { timeout: 10_000, interval: 20 };

async function watch(token: string) {
  const res = await SELF.fetch(`http://redforge.test/ws/fleet?token=${token}`, { headers: { Upgrade: "websocket" } });
  expect(res.status).toBe(101);
  const ws = res.webSocket!;
  const texts: string[] = [];
  let closed: number | null = null;
  ws.addEventListener("message", (e) => texts.push(e.data as string));
  ws.addEventListener("close", (e) => { closed = e.code; });
  ws.accept();
  return { ws, texts, closed: () => closed };
}

/** fanOut over the "fleet" object's sockets with an empty cache, as right after a wake-up. */
function fanOutAfterWakeUp(text: string, grant?: string): Promise<number> {
  const stub = env.FLEET_EVENTS.get(env.FLEET_EVENTS.idFromName("fleet"));
  return runInDurableObject(stub, (_o, state) => fanOut(openKv(env), new WatcherCache(), state.getWebSockets("watcher"), text, grant));
}

describe("/ws/fleet fan-out after a wake-up", () => {
  it("decodes watchers from their attachments: grants filter, revoked watchers close with 4401, the rest receive", async () => {
    const kept = await watch((await createUser("viewer")).token);
    const revokedUser = await createUser("operator");
    const revoked = await watch(revokedUser.token);

    expect(await fanOutAfterWakeUp("needs-a-grant-nobody-holds", "nobody:holds")).toBe(0);
    await markAccessChanged(openKv(env), { userId: revokedUser.id });
    // Other tests' sockets may share the object: at least the kept one was sent to.
    expect(await fanOutAfterWakeUp("to-everyone")).toBeGreaterThanOrEqual(1);

    await vi.waitFor(() => expect(kept.texts).toContain("to-everyone"), WAIT);
    await vi.waitFor(() => expect(revoked.closed()).toBe(ACCESS_REVOKED_CLOSE_CODE), WAIT);
    expect(revoked.texts).not.toContain("to-everyone");
    for (const s of [kept, revoked]) expect(s.texts).not.toContain("needs-a-grant-nobody-holds");
    expect(kept.closed()).toBeNull();
    kept.ws.close();
  });
});
