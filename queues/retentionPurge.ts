/**
 * The daily retention purge (QStash; the schedule exists while any table has
 * a retention in /api/config). Deletes only rows older than their table's
 * retention (core/governance/retention.ts) and records what it removed.
 */
import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../core/app-env.ts";
import { runRetentionPurge } from "../core/governance/retention.ts";
import { readConfig } from "../core/governance/settings.ts";
import { validate } from "../core/validation.ts";
import { describe } from "../core/openapi/describe.ts";
import { retentionPurgeRunSchema } from "../protocol/api/platform.ts";
import { verifyQStashSignature } from "./verifySignature.ts";

/** QStash posts "{}"; `at` and the batch sizes exist for replays and tests. */
const jobBody = z.strictObject({
  at: z.iso.datetime({ offset: true }).transform((s) => new Date(s)).optional(),
  batchSize: z.number().int().min(1).max(10_000).default(5_000),
  maxBatches: z.number().int().min(1).max(1_000).default(20),
});

export const retentionPurgeJob = new Hono<AppEnv>()
  .post("/retention-purge", describe("Jobs")({
    summary: "Delete rows older than their table's retention, and record what went",
    access: "qstash",
    responses: { 200: retentionPurgeRunSchema },
  }), verifyQStashSignature, validate("json", jobBody), async (c) => {
    const body = c.req.valid("json");
    const { db, config } = c.var.services;
    const { retention } = await readConfig(db);
    const tables = await runRetentionPurge(db, retention, {
      now: body.at ?? new Date(), batchSize: body.batchSize, maxBatches: body.maxBatches, checkpointKey: config.auditCheckpointKey,
    });
    return c.json({ tables });
  });
