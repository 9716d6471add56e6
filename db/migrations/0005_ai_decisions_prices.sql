CREATE TABLE "model_prices" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"provider" varchar(100) NOT NULL,
	"model" varchar(100) NOT NULL,
	"input_usd_per_mtok" numeric(14, 6) NOT NULL,
	"output_usd_per_mtok" numeric(14, 6) NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "ai_decision_logs" ADD COLUMN "operation_name" varchar(50);--> statement-breakpoint
ALTER TABLE "ai_decision_logs" ADD COLUMN "response_model" varchar(100);--> statement-breakpoint
ALTER TABLE "ai_decision_logs" ADD COLUMN "response_id" varchar(255);--> statement-breakpoint
ALTER TABLE "ai_decision_logs" ADD COLUMN "span_id" varchar(32);--> statement-breakpoint
ALTER TABLE "ai_decision_logs" ADD COLUMN "flow_id" varchar(100);--> statement-breakpoint
ALTER TABLE "ai_decision_logs" ADD COLUMN "received_at" timestamp with time zone DEFAULT now() NOT NULL;--> statement-breakpoint
CREATE UNIQUE INDEX "uq_model_prices_provider_model" ON "model_prices" USING btree ("provider","model");--> statement-breakpoint
CREATE INDEX "idx_ai_logs_flow" ON "ai_decision_logs" USING btree ("flow_name");