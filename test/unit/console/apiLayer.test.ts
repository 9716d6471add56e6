import { describe, expect, it } from "vitest";
import { formErrors } from "../../../app/src/api/fieldErrors.ts";
import { allows } from "../../../app/src/api/permissions.ts";
import { returnTo } from "../../../app/src/api/returnTo.ts";
import { parseKeyValues } from "../../../app/src/fleet/keyValues.ts";

const FIELDS = ["name", "clusterId", "stack", "resources.cpu", "resources.memory", "env", "secrets"];
const err = (code: string, message: string, details?: unknown) => ({ error: { code, message, ...(details === undefined ? {} : { details }) } });

describe("API errors onto form fields", () => {
  it("puts each validation issue next to the field its path names (nested paths to the nested field)", () => {
    const e = err("validation_failed", "invalid request body: name: Too small", [
      { path: "name", code: "too_small", message: "Too small: expected string to have >=1 characters" },
      { path: "resources.cpu", code: "invalid_format", message: "cpu must look like 500m or 2" },
      { path: "env.FOO", code: "invalid_type", message: "expected string" },
    ]);
    expect(formErrors(e, FIELDS)).toEqual({
      fields: {
        name: "Too small: expected string to have >=1 characters",
        "resources.cpu": "cpu must look like 500m or 2",
        env: "expected string",
      },
    });
  });

  it("a code that implies its field shows the API's message there", () => {
    expect(formErrors(err("instance_name_taken", "an instance named a already exists"), FIELDS))
      .toEqual({ fields: { name: "an instance named a already exists" } });
    expect(formErrors(err("stack_unsupported", "the bridge does not run stack 9.9", { requested: "9.9" }), FIELDS))
      .toEqual({ fields: { stack: "the bridge does not run stack 9.9" } });
  });

  it("what no field claims is shown for the whole form, never dropped", () => {
    expect(formErrors(err("quota_exceeded", "team default may run 5 instances"), FIELDS))
      .toEqual({ form: "team default may run 5 instances", fields: {} });
    expect(formErrors(err("validation_failed", "invalid", [{ path: "replicas", code: "x", message: "too many" }]), FIELDS))
      .toEqual({ form: "replicas: too many", fields: {} });
    expect(formErrors(undefined, FIELDS)).toEqual({ fields: {} });
  });

  it("env and secrets lines parse as KEY=value, the first bad line is the error", () => {
    expect(parseKeyValues("A=1\n# note\n\nB = two=2")).toEqual({ values: { A: "1", B: " two=2" } });
    expect(parseKeyValues("A=1\nnope")).toEqual({ error: "line 2: write KEY=value" });
  });

  it("permissions match the API's rule: * is any resource or action", () => {
    const viewer = [{ resource: "instances", action: "read" }];
    expect(allows(viewer, "instances", "read")).toBe(true);
    expect(allows(viewer, "instances", "create")).toBe(false);
    expect(allows([{ resource: "*", action: "*" }], "instances", "delete")).toBe(true);
    expect(allows([{ resource: "deployments", action: "*" }], "deployments", "update")).toBe(true);
  });

  it("after login only a path on this origin is followed back, never another host", () => {
    expect(returnTo("/deployments/abc?x=1")).toBe("/deployments/abc?x=1");
    for (const bad of ["//evil.example/x", "https://evil.example", "/\\evil.example", "/login?next=/x", "", undefined]) {
      expect(returnTo(bad), String(bad)).toBe("/fleet");
    }
    expect(returnTo(["/clusters", "/x"])).toBe("/clusters");
  });
});
