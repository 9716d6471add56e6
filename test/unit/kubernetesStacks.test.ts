import { describe, expect, it } from "vitest";
import { buildInstanceManifests, cloneForColor } from "../../bridge/drivers/kubernetes/manifests.ts";
import { DEFAULT_STACK_IMAGES, imageOf, parseStackImages, reportedStacks, stackImages } from "../../bridge/drivers/kubernetes/stacks.ts";

describe("kubernetes driver stacks: one image per Node-RED version line", () => {
  it("reads REDFORGE_STACK_IMAGES and refuses an entry that is not <stack>=<image>", () => {
    expect(parseStackImages("5.0=nodered/node-red:5.0.7, 4.1=registry.local:5000/nr:4.1.15")).toEqual({ "5.0": "nodered/node-red:5.0.7", "4.1": "registry.local:5000/nr:4.1.15" });
    expect(() => parseStackImages("5=nodered/node-red:5.0.7")).toThrow(/not <stack>=<image>/);
    expect(() => parseStackImages("5.0=")).toThrow(/not <stack>=<image>/);
  });

  it("reports each image's tag as its release; the defaults are the official 5.0.7 and 4.1.15 images; one `image` names its own line", () => {
    expect(reportedStacks(stackImages({}))).toEqual([
      { id: "5.0", nodeRed: "5.0.7", image: "nodered/node-red:5.0.7" }, { id: "4.1", nodeRed: "4.1.15", image: "nodered/node-red:4.1.15" },
    ]);
    expect(stackImages({ image: "registry.local:5000/nr:4.1.15" })).toEqual({ "4.1": "registry.local:5000/nr:4.1.15" });
    expect(reportedStacks({ "5.0": "nr@sha256:abc" })).toEqual([{ id: "5.0", nodeRed: "unknown", image: "nr@sha256:abc" }]);
  });

  it("a spec without a stack gets the 4.1 image (as before stacks); an unknown stack is `unsupported`", () => {
    expect(imageOf(DEFAULT_STACK_IMAGES, undefined)).toBe("nodered/node-red:4.1.15");
    expect(() => imageOf(DEFAULT_STACK_IMAGES, "3.1")).toThrow(expect.objectContaining({ code: "unsupported" }));
  });

  it("green of a runtime upgrade is blue's StatefulSet with the target stack's image", () => {
    const spec = { id: "00000000-0000-4000-8000-000000000001", name: "up", flows: [], resources: {}, env: {}, credentialSecret: "x".repeat(32), stack: "4.1" };
    const blue = buildInstanceManifests(spec, { namespace: "ns", clusterId: "c1", image: imageOf(DEFAULT_STACK_IMAGES, spec.stack), dataSize: "1Gi", adminToken: "tok", color: "blue" }).statefulSet(1);
    const image = (s: typeof blue) => s.spec!.template.spec!.containers[0]!.image;
    expect(image(blue)).toBe("nodered/node-red:4.1.15");
    expect(image(cloneForColor(blue, "green", spec.id, imageOf(DEFAULT_STACK_IMAGES, "5.0")))).toBe("nodered/node-red:5.0.7");
    expect(image(cloneForColor(blue, "green", spec.id))).toBe("nodered/node-red:4.1.15");
  });
});
