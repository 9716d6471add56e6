/**
 * What a platform team deploys the bridge with (bridge/ship/): the
 * Dockerfile, the Kubernetes manifests and the systemd unit refer to files that
 * exist, agree with each other and with the package, and parse with the tools
 * that will read them where those tools are installed (kubectl kustomize,
 * systemd-analyze). The image is not built here (no registry access); the
 * Role's exact verbs are checked against the driver in kubernetes-driver.test.ts.
 */
import { execFile } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { loadAllYaml } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, "../..");
const SHIP = path.join(ROOT, "bridge/ship");
const exists = (p: string) => fs.access(path.join(ROOT, p)).then(() => true, () => false);
const which = (tool: string) => run("sh", ["-c", `command -v ${tool}`]).then(() => true, () => false);

interface Instruction { op: string; args: string }

/** Dockerfile instructions, continuation lines joined, comments dropped. */
async function dockerfile(): Promise<Instruction[]> {
  const text = await fs.readFile(path.join(SHIP, "Dockerfile"), "utf8");
  const joined = text.split("\n").filter((l) => !/^\s*#/.test(l)).join("\n").replace(/\\\n/g, " ");
  return joined.split("\n").map((l) => l.trim()).filter(Boolean).map((l) => {
    const [op, ...rest] = l.split(/\s+/);
    return { op: op!.toUpperCase(), args: rest.join(" ") };
  });
}

type Doc = { apiVersion?: string; kind?: string; metadata?: { name?: string; namespace?: string }; [k: string]: any };
async function manifests(): Promise<Map<string, Doc>> {
  const dir = path.join(SHIP, "kubernetes");
  const docs = new Map<string, Doc>();
  for (const f of (await fs.readdir(dir)).filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml")) {
    for (const d of loadAllYaml(await fs.readFile(path.join(dir, f), "utf8")) as Doc[]) docs.set(`${d.kind}/${d.metadata?.name}`, { ...d, file: f });
  }
  return docs;
}

describe("bridge/ship/Dockerfile", () => {
  it("is node:22-slim, installs production dependencies from the lockfile, copies what the package ships, and runs as a non-root user", async () => {
    const ins = await dockerfile();
    const known = new Set(["FROM", "ENV", "WORKDIR", "COPY", "RUN", "VOLUME", "USER", "ENTRYPOINT", "CMD", "ARG", "LABEL", "EXPOSE", "HEALTHCHECK"]);
    expect(ins.filter((i) => !known.has(i.op))).toEqual([]);
    expect(ins[0]).toEqual({ op: "FROM", args: "node:22-slim" });
    expect(ins.some((i) => i.op === "RUN" && /\bnpm ci --omit=dev\b/.test(i.args))).toBe(true);

    const copied = ins.filter((i) => i.op === "COPY").flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    for (const src of copied) expect(await exists(src), `COPY ${src}`).toBe(true);
    // The image holds what `npm pack` would (package.json "files"), code-wise.
    const pkg = JSON.parse(await fs.readFile(path.join(ROOT, "package.json"), "utf8")) as { files: string[] };
    // The package also ships the `redforge` CLI (bin/, cli/): a CI tool, not part of the bridge's image.
    const CLI_ONLY = new Set(["bin/", "cli/"]);
    const shipped = pkg.files.filter((f) => !f.startsWith("!") && !f.startsWith("docs/") && !CLI_ONLY.has(f));
    expect(copied.filter((c) => c.endsWith("/")).sort()).toEqual([...shipped].sort());
    expect(copied).toEqual(expect.arrayContaining(["package.json", "package-lock.json"]));

    const users = ins.filter((i) => i.op === "USER").map((i) => i.args);
    expect(users.at(-1)).toBeDefined();
    expect(["root", "0"]).not.toContain(users.at(-1));

    const entry = JSON.parse(ins.find((i) => i.op === "ENTRYPOINT")!.args) as string[];
    expect(entry.slice(0, 2)).toEqual(["node", "bridge/bin.mjs"]);
    expect(await exists(entry[1]!)).toBe(true);
    // The tarball the entrypoint names is the one a RUN step packs.
    const nodePackage = entry[entry.indexOf("--node-package") + 1]!;
    expect(ins.some((i) => i.op === "RUN" && i.args.includes("npm pack ./flows/node-package") && i.args.includes(nodePackage))).toBe(true);
    const stateDir = entry[entry.indexOf("--state-dir") + 1]!;
    expect(ins.find((i) => i.op === "VOLUME")!.args).toContain(stateDir);
  });

  it("its .dockerignore lets through exactly what the COPY lines need", async () => {
    const ignore = (await fs.readFile(path.join(SHIP, "Dockerfile.dockerignore"), "utf8")).split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
    expect(ignore[0]).toBe("*");
    const allowed = ignore.filter((l) => l.startsWith("!")).map((l) => l.slice(1));
    const copied = (await dockerfile()).filter((i) => i.op === "COPY").flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    expect([...allowed].sort()).toEqual([...copied].sort());
  });
});

describe("bridge/ship/kubernetes", () => {
  it("namespace-agnostic resources that refer to each other by the right names", async () => {
    const docs = await manifests();
    expect([...docs.keys()].sort()).toEqual(["Deployment/redforge-bridge", "PersistentVolumeClaim/redforge-bridge-state", "Role/redforge-bridge", "RoleBinding/redforge-bridge", "ServiceAccount/redforge-bridge"]);
    for (const [key, d] of docs) expect(d.metadata?.namespace, `${key} must not pin a namespace`).toBeUndefined();

    const binding = docs.get("RoleBinding/redforge-bridge")!;
    expect(binding.roleRef).toEqual({ apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "redforge-bridge" });
    expect(binding.subjects).toEqual([expect.objectContaining({ kind: "ServiceAccount", name: "redforge-bridge" })]);

    const deploy = docs.get("Deployment/redforge-bridge")!;
    const pod = deploy.spec.template.spec;
    expect(deploy.spec.replicas).toBe(1); // one link per cluster
    expect(deploy.spec.strategy.type).toBe("Recreate");
    expect(pod.serviceAccountName).toBe("redforge-bridge");
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000 });
    const [container] = pod.containers;
    expect(container.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } });
    expect(container.args).toContain("--driver=kubernetes");

    // The state volume is where the image keeps state; the secret file is inside the Secret's mount.
    const entry = JSON.parse((await dockerfile()).find((i) => i.op === "ENTRYPOINT")!.args) as string[];
    const stateDir = entry[entry.indexOf("--state-dir") + 1];
    const mount = (name: string) => container.volumeMounts.find((m: { name: string }) => m.name === name)?.mountPath;
    expect(mount("state")).toBe(stateDir);
    expect(pod.volumes.find((v: { name: string }) => v.name === "state").persistentVolumeClaim.claimName).toBe("redforge-bridge-state");
    const secretFile = (container.args as string[]).find((a) => a.startsWith("--secret-file="))!.split("=")[1]!;
    const secretVolume = pod.volumes.find((v: { name: string }) => v.name === "cluster-secret").secret;
    expect(secretFile).toBe(path.posix.join(mount("cluster-secret"), secretVolume.items[0].path));
  });

  it("kustomization.yaml lists every manifest and renders with kubectl kustomize", async () => {
    const kustomization = loadAllYaml(await fs.readFile(path.join(SHIP, "kubernetes/kustomization.yaml"), "utf8"))[0] as { resources: string[] };
    const files = [...new Set([...(await manifests()).values()].map((d) => d.file as string))];
    expect([...kustomization.resources].sort()).toEqual(files.sort());
    if (!(await which("kubectl"))) return; // the structure above is still checked
    const { stdout } = await run("kubectl", ["kustomize", path.join(SHIP, "kubernetes")]);
    const rendered = loadAllYaml(stdout) as Doc[];
    expect(rendered.map((d) => d.kind).sort()).toEqual(["ConfigMap", "Deployment", "PersistentVolumeClaim", "Role", "RoleBinding", "ServiceAccount"]);
    const ns = rendered[0]!.metadata!.namespace;
    expect(rendered.every((d) => d.metadata?.namespace === ns)).toBe(true);
    expect(rendered.find((d) => d.kind === "RoleBinding")!.subjects[0].namespace).toBe(ns);
  });
});

describe("bridge/ship/systemd/redforge-bridge.service", () => {
  const unitFile = path.join(SHIP, "systemd/redforge-bridge.service");
  const directives = async () => {
    const out = new Map<string, string[]>();
    for (const line of (await fs.readFile(unitFile, "utf8")).split("\n")) {
      const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
      if (m) out.set(m[1]!, [...(out.get(m[1]!) ?? []), m[2]!]);
    }
    return (key: string) => out.get(key)?.at(-1);
  };

  it("runs the process driver from the installed package, hardened, with a state directory, restarted on failure", async () => {
    const get = await directives();
    expect(get("ExecStart")).toMatch(/^\/usr\/bin\/node \/opt\/redforge\/bridge\/bin\.mjs .*--driver process/);
    expect(get("ExecStart")).toContain(`--state-dir %S/${get("StateDirectory")}`);
    expect(get("Restart")).toBe("on-failure");
    for (const [key, value] of Object.entries({ NoNewPrivileges: "yes", ProtectSystem: "strict", ProtectHome: "yes", PrivateTmp: "yes", DynamicUser: "yes", CapabilityBoundingSet: "" })) {
      expect(get(key), key).toBe(value);
    }
    expect(get("StateDirectory")).toBe("redforge-bridge");
    // The secret never sits in the unit or its environment: a credential, read from a root-only file.
    expect(get("ExecStart")).toContain("--secret-file %d/cluster.secret");
    expect(get("LoadCredential")).toMatch(/^cluster\.secret:\//);
  });

  it("systemd-analyze verify finds nothing wrong with it", async () => {
    if (!(await which("systemd-analyze"))) return;
    const { stderr } = await run("systemd-analyze", ["verify", unitFile]).catch((err: { stderr?: string }) => ({ stderr: err.stderr ?? String(err) }));
    // Only lines about this unit: a container's own missing units are not ours.
    expect(stderr.split("\n").filter((l) => l.includes("redforge-bridge.service"))).toEqual([]);
  });
});
