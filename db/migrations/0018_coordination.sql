CREATE TABLE "coordination_sessions" (
	"id" uuid PRIMARY KEY NOT NULL,
	"instance_id" uuid NOT NULL,
	"pattern" varchar(20) NOT NULL,
	"rule" varchar(20),
	"status" varchar(20) NOT NULL,
	"question" text,
	"answer" text,
	"settings" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"answers" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"outcome" jsonb,
	"started_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"decided_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "coordination_sessions" ADD CONSTRAINT "coordination_sessions_instance_id_instances_id_fk" FOREIGN KEY ("instance_id") REFERENCES "public"."instances"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "idx_coordination_started" ON "coordination_sessions" USING btree ("started_at","id");--> statement-breakpoint
CREATE INDEX "idx_coordination_instance" ON "coordination_sessions" USING btree ("instance_id","started_at");
