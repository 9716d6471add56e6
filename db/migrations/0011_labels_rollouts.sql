ALTER TABLE "instances" ADD COLUMN "labels" jsonb DEFAULT '{}'::jsonb NOT NULL;
--> statement-breakpoint
CREATE INDEX "idx_instances_labels" ON "instances" USING gin ("labels");
--> statement-breakpoint
CREATE TABLE "rollouts" (
	"id" uuid PRIMARY KEY NOT NULL,
	"status" varchar(30) NOT NULL,
	"selector" text NOT NULL,
	"description" text,
	"flows_digest" varchar(64) NOT NULL,
	"version_id" uuid,
	"plan" jsonb NOT NULL,
	"current_wave" integer,
	"wave_count" integer NOT NULL,
	"summary" jsonb NOT NULL,
	"failure" jsonb,
	"created_by" uuid,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"completed_at" timestamp with time zone
);
--> statement-breakpoint
CREATE INDEX "idx_rollouts_list" ON "rollouts" USING btree ("created_at","id");
--> statement-breakpoint
CREATE INDEX "idx_rollouts_status" ON "rollouts" USING btree ("status");
