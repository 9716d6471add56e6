/** Response bodies of /api/auth, /api/users, /api/roles and /api/api-keys. */
import { z } from "zod";
import { permissionSchema, timestamp, uuid } from "./common.ts";

export const sessionSchema = z.object({
  token: z.string().meta({ description: "Session JWT: send as Authorization: Bearer <token>" }),
  expiresAt: timestamp,
  user: z.object({ id: uuid, username: z.string(), role: z.string() }),
}).meta({ id: "Session" });

export const callerSchema = z.object({
  id: uuid,
  username: z.string(),
  role: z.string(),
  team: z.string(),
  via: z.enum(["token", "api_key"]),
  apiKeyId: uuid.optional(),
  permissions: z.array(permissionSchema),
}).meta({ id: "Caller" });

export const userSchema = z.object({
  id: uuid,
  username: z.string(),
  email: z.string(),
  role: z.string(),
  team: z.string(),
  disabled: z.boolean(),
  createdAt: timestamp,
  updatedAt: timestamp,
  lastLogin: timestamp.nullable(),
}).meta({ id: "User" });

export const roleSchema = z.object({
  name: z.string(),
  permissions: z.array(permissionSchema),
  builtin: z.boolean(),
  /** null for built-in roles (they live in code). */
  createdAt: timestamp.nullable(),
}).meta({ id: "Role" });

export const apiKeySchema = z.object({
  id: uuid,
  name: z.string(),
  prefix: z.string(),
  role: z.string(),
  scopes: z.array(permissionSchema).nullable(),
  userId: uuid,
  createdAt: timestamp,
  expiresAt: timestamp.nullable(),
  lastUsedAt: timestamp.nullable(),
  revokedAt: timestamp.nullable(),
}).meta({ id: "ApiKey" });

export const apiKeyCreatedSchema = apiKeySchema.extend({
  key: z.string().meta({ description: "rf_…; shown only here, send as Authorization: Bearer <key>" }),
}).meta({ id: "ApiKeyCreated" });
