ALTER TABLE "workflow_checkpoints" ADD COLUMN "checkpoint_id" uuid;--> statement-breakpoint
ALTER TABLE "workflow_checkpoints" ADD COLUMN "kind" varchar(255);--> statement-breakpoint
ALTER TABLE "workflow_checkpoints" ADD COLUMN "phase" varchar(20);--> statement-breakpoint
ALTER TABLE "workflow_checkpoints" ADD COLUMN "input_hash" varchar(64);--> statement-breakpoint
ALTER TABLE "workflow_checkpoints" ADD COLUMN "completed" jsonb;--> statement-breakpoint
ALTER TABLE "workflow_checkpoints" ADD COLUMN "runtime_id" varchar(80);--> statement-breakpoint
ALTER TABLE "workflow_checkpoints" ADD COLUMN "error" jsonb;--> statement-breakpoint
ALTER TABLE "workflow_checkpoints" ADD COLUMN "recorded_at" timestamp with time zone;--> statement-breakpoint
CREATE UNIQUE INDEX "uq_checkpoints_checkpoint_id" ON "workflow_checkpoints" USING btree ("checkpoint_id");--> statement-breakpoint
CREATE TABLE "workflows" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"instance_id" uuid NOT NULL,
	"workflow_id" varchar(255) NOT NULL,
	"kind" varchar(255) NOT NULL,
	"state" varchar(20) NOT NULL,
	"last_step" varchar(255) NOT NULL,
	"last_phase" varchar(20) NOT NULL,
	"completed" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"error" jsonb,
	"runtime_id" varchar(80),
	"pending_action" varchar(20),
	"pending_from_step" varchar(255),
	"action_requested_by" uuid,
	"action_requested_at" timestamp with time zone,
	"action_sent_at" timestamp with time zone,
	"last_action" jsonb,
	"started_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "workflows" ADD CONSTRAINT "workflows_instance_id_instances_id_fk" FOREIGN KEY ("instance_id") REFERENCES "public"."instances"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "uq_workflows_instance_workflow" ON "workflows" USING btree ("instance_id","workflow_id");--> statement-breakpoint
CREATE INDEX "idx_workflows_list" ON "workflows" USING btree ("updated_at","id");--> statement-breakpoint
CREATE INDEX "idx_workflows_pending" ON "workflows" USING btree ("pending_action") WHERE "workflows"."pending_action" is not null;
