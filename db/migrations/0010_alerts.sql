CREATE TABLE "alert_channels" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"team" varchar(100) NOT NULL,
	"name" varchar(100) NOT NULL,
	"kind" varchar(20) NOT NULL,
	"url" text NOT NULL,
	"secret_sealed" text,
	"enabled" boolean DEFAULT true NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "alert_notifications" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"alert_id" uuid NOT NULL,
	"channel_id" uuid,
	"team" varchar(100) NOT NULL,
	"event" varchar(20) NOT NULL,
	"status" varchar(20) DEFAULT 'queued' NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"last_error" text,
	"payload" jsonb NOT NULL,
	"delivered_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "alert_rules" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"team" varchar(100) NOT NULL,
	"name" varchar(100) NOT NULL,
	"kind" varchar(50) NOT NULL,
	"params" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"severity" varchar(20) DEFAULT 'warning' NOT NULL,
	"clear_evaluations" integer DEFAULT 2 NOT NULL,
	"enabled" boolean DEFAULT true NOT NULL,
	"state" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"created_by" uuid,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "alerts" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"rule_id" uuid,
	"team" varchar(100) NOT NULL,
	"kind" varchar(50) NOT NULL,
	"severity" varchar(20) NOT NULL,
	"subject" varchar(255) NOT NULL,
	"subject_name" varchar(255),
	"status" varchar(20) NOT NULL,
	"summary" text NOT NULL,
	"details" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"clear_count" integer DEFAULT 0 NOT NULL,
	"refire_count" integer DEFAULT 0 NOT NULL,
	"started_at" timestamp with time zone NOT NULL,
	"fired_at" timestamp with time zone,
	"acknowledged_at" timestamp with time zone,
	"acknowledged_by" uuid,
	"resolved_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "alert_notifications" ADD CONSTRAINT "alert_notifications_alert_id_alerts_id_fk" FOREIGN KEY ("alert_id") REFERENCES "public"."alerts"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "alert_notifications" ADD CONSTRAINT "alert_notifications_channel_id_alert_channels_id_fk" FOREIGN KEY ("channel_id") REFERENCES "public"."alert_channels"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "alerts" ADD CONSTRAINT "alerts_rule_id_alert_rules_id_fk" FOREIGN KEY ("rule_id") REFERENCES "public"."alert_rules"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "uq_alert_channels_team_name" ON "alert_channels" USING btree ("team","name");--> statement-breakpoint
CREATE INDEX "idx_alert_channels_list" ON "alert_channels" USING btree ("created_at","id");--> statement-breakpoint
CREATE INDEX "idx_alert_notifications_list" ON "alert_notifications" USING btree ("created_at","id");--> statement-breakpoint
CREATE INDEX "idx_alert_notifications_alert" ON "alert_notifications" USING btree ("alert_id");--> statement-breakpoint
CREATE UNIQUE INDEX "uq_alert_rules_team_name" ON "alert_rules" USING btree ("team","name");--> statement-breakpoint
CREATE INDEX "idx_alert_rules_list" ON "alert_rules" USING btree ("created_at","id");--> statement-breakpoint
CREATE UNIQUE INDEX "uq_alerts_open" ON "alerts" USING btree ("rule_id","subject") WHERE "alerts"."status" <> 'resolved';--> statement-breakpoint
CREATE INDEX "idx_alerts_list" ON "alerts" USING btree ("created_at","id");--> statement-breakpoint
CREATE INDEX "idx_alerts_team_status" ON "alerts" USING btree ("team","status");