import { z } from "zod";

/**
 * Input shapes shared by several routes. Names are DNS-1123 labels because
 * they become Kubernetes object names and hostnames on the bridge side.
 */
export const dnsLabel = z.string()
  .min(1).max(63)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "must be lowercase letters, digits and '-', starting and ending with a letter or digit");

export const labelMap = z.record(
  z.string().min(1).max(63).regex(/^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/, "label keys are alphanumeric with - _ ."),
  z.string().max(63),
).refine((m) => Object.keys(m).length <= 32, "at most 32 labels");

/** Kubernetes quantities: "500m" / "2" CPUs, "512Mi" / "1Gi" memory. */
export const resourcesShape = z.strictObject({
  cpu: z.string().regex(/^(\d+m|\d+(\.\d{1,3})?)$/, 'cpu is a Kubernetes quantity such as "500m" or "2"').optional(),
  memory: z.string().regex(/^\d+(Ki|Mi|Gi|Ti|K|M|G|T)?$/, 'memory is a Kubernetes quantity such as "512Mi" or "2Gi"').optional(),
});

export const envShape = z.record(
  z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "environment variable names are letters, digits and _").max(128),
  z.string().max(32 * 1024),
).refine((m) => Object.keys(m).length <= 200, "at most 200 environment variables");

/** A Node-RED flow file: an array of node/tab/config objects, each with id and type. */
export const flowsShape = z.array(
  z.looseObject({ id: z.string().min(1).max(64), type: z.string().min(1).max(128) }),
).max(5_000);
