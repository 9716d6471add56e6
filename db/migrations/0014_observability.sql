ALTER TABLE "instance_health" ADD COLUMN "cpu_seconds" double precision;--> statement-breakpoint
ALTER TABLE "instance_health" ADD COLUMN "messages_in" bigint;--> statement-breakpoint
ALTER TABLE "instance_health" ADD COLUMN "messages_out" bigint;--> statement-breakpoint
ALTER TABLE "instance_health" ADD COLUMN "message_errors" bigint;--> statement-breakpoint
ALTER TABLE "instance_health" ADD COLUMN "flow_messages" jsonb;
