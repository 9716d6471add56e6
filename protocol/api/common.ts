/**
 * Building blocks of the API's response schemas (the request schemas are the
 * routes' own validators). Response schemas describe what the Worker sends;
 * they are documentation and client types, not checked at run time.
 */
import { z } from "zod";

/** The one error shape of the API (core/errors.ts): every 4xx and 5xx carries it. */
export const errorSchema = z.object({
  error: z.object({
    /** Machine-readable: `validation_failed`, `forbidden`, `instance_not_found`, … */
    code: z.string(),
    message: z.string(),
    /** For `validation_failed`, zod's issues ({path, code, message}); otherwise code-specific facts. */
    details: z.unknown().optional(),
  }),
}).meta({ id: "Error", description: "The one error shape of the API: {error: {code, message, details?}}." });

/** JSON-serialised Date. */
export const timestamp = z.string().meta({ format: "date-time" });
export const uuid = z.string().meta({ format: "uuid" });

export const permissionSchema = z.object({ resource: z.string(), action: z.string() })
  .meta({ id: "Permission", description: "resource:action; either may be \"*\"." });

/** A keyset-paginated list: pass `nextCursor` back as `cursor` for the next page (null: last page). */
export const pageOf = <T extends z.ZodType>(item: T) => z.object({ items: z.array(item), nextCursor: z.string().nullable() });
export const listOf = <T extends z.ZodType>(item: T) => z.object({ items: z.array(item) });

/** What a lifecycle call answers: the command is queued, `status` follows when the bridge reports. */
export const commandAcceptedSchema = z.object({
  id: uuid,
  status: z.string(),
  desiredState: z.string(),
  commandId: z.string(),
}).meta({ id: "CommandAccepted" });
