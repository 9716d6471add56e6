CREATE TABLE "audit_checkpoints" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"up_to_id" bigint NOT NULL,
	"up_to_hash" varchar(64) NOT NULL,
	"row_count" bigint NOT NULL,
	"from_id" bigint NOT NULL,
	"range_start" timestamp with time zone NOT NULL,
	"range_end" timestamp with time zone NOT NULL,
	"key_id" varchar(16) NOT NULL,
	"signature" varchar(64) NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "settings" (
	"key" varchar(100) PRIMARY KEY NOT NULL,
	"value" jsonb NOT NULL,
	"updated_by" uuid,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "compliance_exports" ADD COLUMN "framework" varchar(20);--> statement-breakpoint
ALTER TABLE "compliance_exports" ADD COLUMN "format" varchar(10) DEFAULT 'json' NOT NULL;--> statement-breakpoint
ALTER TABLE "compliance_exports" ADD COLUMN "size_bytes" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "compliance_exports" ADD COLUMN "trigger" varchar(20) DEFAULT 'on_demand' NOT NULL;--> statement-breakpoint
CREATE UNIQUE INDEX "uq_audit_checkpoints_up_to" ON "audit_checkpoints" USING btree ("up_to_id");--> statement-breakpoint
CREATE INDEX "idx_compliance_exports_list" ON "compliance_exports" USING btree ("created_at","id");--> statement-breakpoint
CREATE INDEX "idx_instance_health_checked" ON "instance_health" USING btree ("checked_at");