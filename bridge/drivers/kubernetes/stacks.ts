/**
 * The kubernetes driver's stacks: one container image per Node-RED version
 * line, configured (`REDFORGE_STACK_IMAGES=5.0=nodered/node-red:5.0.7,4.1=…`)
 * or the official images by default. The exact release is the image tag's
 * version; an image whose tag is not one (a digest, `latest`) reports its tag.
 */
import { LEGACY_STACK, stackIdSchema, stackOfVersion, type SupportedStack } from "../../../protocol/stacks.ts";
import { BridgeError } from "../../errors.ts";

/** Newest first, as the process driver lists its installed stacks. The 5.0.7 image's tag follows the 4.x naming; not pulled here (no registry reachable). */
export const DEFAULT_STACK_IMAGES: Record<string, string> = { "5.0": "nodered/node-red:5.0.7", "4.1": "nodered/node-red:4.1.15" };

/** "5.0=nodered/node-red:5.0.7,4.1=nodered/node-red:4.1.15" → { "5.0": …, "4.1": … }; a bad entry is a startup error. */
export function parseStackImages(text: string): Record<string, string> {
  const images: Record<string, string> = {};
  for (const entry of text.split(",").map((e) => e.trim()).filter(Boolean)) {
    const eq = entry.indexOf("=");
    const id = entry.slice(0, eq).trim();
    const image = entry.slice(eq + 1).trim();
    if (eq < 1 || !image || !stackIdSchema.safeParse(id).success) throw new Error(`REDFORGE_STACK_IMAGES: "${entry}" is not <stack>=<image> (e.g. 5.0=nodered/node-red:5.0.7)`);
    images[id] = image;
  }
  return images;
}

/** The images the driver uses: configured ones, else one `image` (its tag's line), else the defaults. */
export function stackImages(opts: { stackImages?: Record<string, string>; image?: string }): Record<string, string> {
  if (opts.stackImages && Object.keys(opts.stackImages).length > 0) return opts.stackImages;
  if (opts.image) return { [stackOfVersion(tagOf(opts.image)) ?? LEGACY_STACK]: opts.image };
  return DEFAULT_STACK_IMAGES;
}

export function reportedStacks(images: Record<string, string>): SupportedStack[] {
  return Object.entries(images).map(([id, image]) => ({ id, nodeRed: tagOf(image) || "unknown", image }));
}

/** The image of a stack, or BridgeError `unsupported` naming the configured ones. */
export function imageOf(images: Record<string, string>, stack: string | undefined): string {
  const id = stack ?? LEGACY_STACK;
  const image = images[id];
  if (!image) throw new BridgeError("unsupported", `stack ${id} has no image on this bridge (configured: ${Object.keys(images).join(", ") || "none"}; set REDFORGE_STACK_IMAGES)`);
  return image;
}

function tagOf(image: string): string {
  const at = image.split("@")[0]!;
  const slash = at.lastIndexOf("/");
  const colon = at.lastIndexOf(":");
  return colon > slash ? at.slice(colon + 1) : "";
}
