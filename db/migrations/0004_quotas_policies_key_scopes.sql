ALTER TABLE "api_keys" ADD COLUMN "scopes" jsonb;--> statement-breakpoint
CREATE INDEX "idx_instances_team" ON "instances" USING btree ("team");