ALTER TABLE "dead_letters" ADD COLUMN "replay_state" varchar(20);--> statement-breakpoint
ALTER TABLE "dead_letters" ADD COLUMN "replayed_by" uuid;--> statement-breakpoint
ALTER TABLE "dead_letters" ADD COLUMN "replayed_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "dead_letters" ADD COLUMN "replay_count" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "dead_letters" ADD COLUMN "replay_sent_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "dead_letters" ADD COLUMN "replay_result" jsonb;--> statement-breakpoint
CREATE INDEX "idx_dead_letters_replay_pending" ON "dead_letters" USING btree ("cluster_id","id") WHERE "replay_state" = 'pending';
