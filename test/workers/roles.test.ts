import { describe, expect, it } from "vitest";
import { api, createCluster, createInstance, createUser, expectErrorShape, unique } from "./helpers.ts";

async function customRole(token: string, permissions: { resource: string; action: string }[], name = unique("role")) {
  const res = await api("POST", "/api/roles", { token, body: { name, permissions } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as { name: string; permissions: unknown[]; builtin: false };
}

describe("roles API", () => {
  it("lists built-in roles (marked builtin) and custom ones", async () => {
    const admin = await createUser("admin");
    const role = await customRole(admin.token, [{ resource: "metrics", action: "read" }]);
    const res = await api("GET", "/api/roles", { token: admin.token });
    expect(res.status).toBe(200);
    const byName = new Map(res.body.items.map((r: { name: string }) => [r.name, r]));
    for (const b of ["admin", "operator", "viewer"]) expect(byName.get(b)).toMatchObject({ builtin: true });
    expect(byName.get(role.name)).toMatchObject({ builtin: false, permissions: [{ resource: "metrics", action: "read" }] });
    expect(res.body.items.filter((r: { name: string }) => r.name === "admin")).toHaveLength(1);
  });

  it("a custom instances:read role can read instances and gets 403 on create", async () => {
    const admin = await createUser("admin");
    const cluster = await createCluster(admin.token);
    const instance = await createInstance(admin.token, cluster.id);
    const role = await customRole(admin.token, [{ resource: "instances", action: "read" }]);
    const reader = await createUser(role.name);
    expect((await api("GET", "/api/instances", { token: reader.token })).status).toBe(200);
    expect((await api("GET", `/api/instances/${instance.id}`, { token: reader.token })).status).toBe(200);
    const denied = await api("POST", "/api/instances", { token: reader.token, body: { name: unique("i"), clusterId: cluster.id } });
    expect(denied.status).toBe(403);
    expectErrorShape(denied.body, "forbidden");
    expect((await api("GET", "/api/clusters", { token: reader.token })).status).toBe(403);
  });

  it("wildcards: instances:* may create instances; *:read reads everything and writes nothing", async () => {
    const admin = await createUser("admin");
    const cluster = await createCluster(admin.token);
    const all = await createUser((await customRole(admin.token, [{ resource: "instances", action: "*" }])).name);
    expect((await api("POST", "/api/instances", { token: all.token, body: { name: unique("i"), clusterId: cluster.id } })).status).toBe(201);
    const reader = await createUser((await customRole(admin.token, [{ resource: "*", action: "read" }])).name);
    expect((await api("GET", "/api/clusters", { token: reader.token })).status).toBe(200);
    expect((await api("GET", "/api/users", { token: reader.token })).status).toBe(200);
    expect((await api("POST", "/api/clusters", { token: reader.token, body: { name: unique("c") } })).status).toBe(403);
  });

  it("an edit applies to holders at once", async () => {
    const admin = await createUser("admin");
    const role = await customRole(admin.token, [{ resource: "clusters", action: "read" }]);
    const u = await createUser(role.name);
    expect((await api("GET", "/api/clusters", { token: u.token })).status).toBe(200);
    const patched = await api("PATCH", `/api/roles/${role.name}`, { token: admin.token, body: { permissions: [{ resource: "metrics", action: "read" }] } });
    expect(patched.status).toBe(200);
    expect((await api("GET", "/api/clusters", { token: u.token })).status).toBe(403);
  });

  it("built-in roles cannot be edited, deleted or shadowed", async () => {
    const admin = await createUser("admin");
    const patch = await api("PATCH", "/api/roles/viewer", { token: admin.token, body: { permissions: [{ resource: "*", action: "*" }] } });
    expect(patch.status).toBe(409);
    expectErrorShape(patch.body, "builtin_role");
    const del = await api("DELETE", "/api/roles/admin", { token: admin.token });
    expect(del.status).toBe(409);
    expectErrorShape(del.body, "builtin_role");
    const clash = await api("POST", "/api/roles", { token: admin.token, body: { name: "operator", permissions: [{ resource: "metrics", action: "read" }] } });
    expect(clash.status).toBe(409);
    expectErrorShape(clash.body, "role_exists");
  });

  it("validates permissions and rejects duplicate names", async () => {
    const admin = await createUser("admin");
    const bad = await api("POST", "/api/roles", { token: admin.token, body: { name: unique("r"), permissions: [{ resource: "spaceships", action: "read" }] } });
    expect(bad.status).toBe(400);
    const badAction = await api("POST", "/api/roles", { token: admin.token, body: { name: unique("r"), permissions: [{ resource: "instances", action: "launch" }] } });
    expect(badAction.status).toBe(400);
    const role = await customRole(admin.token, [{ resource: "metrics", action: "read" }]);
    const dup = await api("POST", "/api/roles", { token: admin.token, body: { name: role.name, permissions: [{ resource: "metrics", action: "read" }] } });
    expect(dup.status).toBe(409);
    expectErrorShape(dup.body, "role_exists");
  });

  it("a role in use cannot be deleted; once unused it can", async () => {
    const admin = await createUser("admin");
    const role = await customRole(admin.token, [{ resource: "metrics", action: "read" }]);
    const u = await createUser(role.name);
    const busy = await api("DELETE", `/api/roles/${role.name}`, { token: admin.token });
    expect(busy.status).toBe(409);
    expectErrorShape(busy.body, "role_in_use");
    expect((await api("PATCH", `/api/users/${u.id}`, { token: admin.token, body: { role: "viewer" } })).status).toBe(200);
    expect((await api("DELETE", `/api/roles/${role.name}`, { token: admin.token })).status).toBe(204);
    expect((await api("DELETE", `/api/roles/${role.name}`, { token: admin.token })).status).toBe(404);
    const gone = await api("PATCH", `/api/users/${u.id}`, { token: admin.token, body: { role: role.name } });
    expect(gone.status).toBe(400);
    expectErrorShape(gone.body, "unknown_role");
  });

  it("nobody can create a role wider than their own", async () => {
    const admin = await createUser("admin");
    const mgr = await createUser((await customRole(admin.token, [{ resource: "roles", action: "*" }])).name);
    const wide = await api("POST", "/api/roles", { token: mgr.token, body: { name: unique("r"), permissions: [{ resource: "*", action: "*" }] } });
    expect(wide.status).toBe(403);
    expectErrorShape(wide.body, "role_too_wide");
    expect((await api("POST", "/api/roles", { token: mgr.token, body: { name: unique("r"), permissions: [{ resource: "roles", action: "read" }] } })).status).toBe(201);
  });
});
