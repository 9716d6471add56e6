CREATE TABLE "pipelines" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" varchar(100) NOT NULL,
	"team" varchar(100),
	"stages" jsonb NOT NULL,
	"created_by" uuid,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "pipeline_promotions" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"pipeline_id" uuid NOT NULL,
	"stage" varchar(100) NOT NULL,
	"status" varchar(30) NOT NULL,
	"source" jsonb NOT NULL,
	"flows" jsonb,
	"version_id" uuid,
	"digest" varchar(64),
	"rollout" jsonb NOT NULL,
	"rollout_id" uuid,
	"requested_by" uuid,
	"decided_by" uuid,
	"decided_at" timestamp with time zone,
	"reason" text,
	"failure" jsonb,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "ci_hooks" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" varchar(100) NOT NULL,
	"team" varchar(100),
	"action" jsonb NOT NULL,
	"secret_sealed" text NOT NULL,
	"created_by" uuid NOT NULL,
	"last_delivery_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "pipelines" ADD CONSTRAINT "pipelines_created_by_users_id_fk" FOREIGN KEY ("created_by") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "pipeline_promotions" ADD CONSTRAINT "pipeline_promotions_pipeline_id_pipelines_id_fk" FOREIGN KEY ("pipeline_id") REFERENCES "public"."pipelines"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "pipeline_promotions" ADD CONSTRAINT "pipeline_promotions_requested_by_users_id_fk" FOREIGN KEY ("requested_by") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "pipeline_promotions" ADD CONSTRAINT "pipeline_promotions_decided_by_users_id_fk" FOREIGN KEY ("decided_by") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "ci_hooks" ADD CONSTRAINT "ci_hooks_created_by_users_id_fk" FOREIGN KEY ("created_by") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "uq_pipelines_name" ON "pipelines" USING btree ("name");--> statement-breakpoint
CREATE INDEX "idx_pipelines_list" ON "pipelines" USING btree ("created_at","id");--> statement-breakpoint
CREATE INDEX "idx_pipeline_promotions_pipeline" ON "pipeline_promotions" USING btree ("pipeline_id","created_at");--> statement-breakpoint
CREATE INDEX "idx_pipeline_promotions_rollout" ON "pipeline_promotions" USING btree ("rollout_id");--> statement-breakpoint
CREATE UNIQUE INDEX "uq_ci_hooks_name" ON "ci_hooks" USING btree ("name");--> statement-breakpoint
CREATE INDEX "idx_ci_hooks_list" ON "ci_hooks" USING btree ("created_at","id");
