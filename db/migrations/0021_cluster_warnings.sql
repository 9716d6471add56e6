-- What a cluster's bridge reports wrong with it (issue 12, protocol/reports.ts `cluster.warnings`), e.g. a
-- broker that drops QoS 1 messages queued for an offline session: shown on GET /api/clusters and the console.
ALTER TABLE "clusters" ADD COLUMN "warnings" jsonb DEFAULT '[]'::jsonb NOT NULL;
