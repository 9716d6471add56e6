CREATE TABLE "instance_health" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"instance_id" uuid NOT NULL,
	"checked_at" timestamp with time zone NOT NULL,
	"state" varchar(20) NOT NULL,
	"live" boolean NOT NULL,
	"ready" boolean NOT NULL,
	"rss_bytes" bigint,
	"heap_used_bytes" bigint,
	"flows_state" varchar(10),
	"missing_node_types" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"error" text
);
--> statement-breakpoint
ALTER TABLE "instances" ADD COLUMN "replicas" integer DEFAULT 1 NOT NULL;--> statement-breakpoint
ALTER TABLE "instances" ADD COLUMN "credential_secret_sealed" text;--> statement-breakpoint
ALTER TABLE "instance_health" ADD CONSTRAINT "instance_health_instance_id_instances_id_fk" FOREIGN KEY ("instance_id") REFERENCES "public"."instances"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "idx_instance_health_recent" ON "instance_health" USING btree ("instance_id","checked_at");