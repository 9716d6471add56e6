ALTER TABLE "clusters" DROP CONSTRAINT "clusters_name_unique";--> statement-breakpoint
ALTER TABLE "clusters" ADD COLUMN "deleted_at" timestamp with time zone;--> statement-breakpoint
CREATE UNIQUE INDEX "uq_clusters_live_name" ON "clusters" USING btree ("name") WHERE "clusters"."deleted_at" is null;