CREATE TABLE "dead_letters" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"letter_id" varchar(64) NOT NULL,
	"instance_id" uuid NOT NULL,
	"cluster_id" uuid NOT NULL,
	"flow_id" varchar(255),
	"primitive" varchar(100),
	"node_red_flow" varchar(100),
	"error_code" varchar(100) NOT NULL,
	"error_message" text NOT NULL,
	"attempts" integer,
	"input" jsonb,
	"failed_at" timestamp with time zone NOT NULL,
	"received_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "dead_letters" ADD CONSTRAINT "dead_letters_instance_id_instances_id_fk" FOREIGN KEY ("instance_id") REFERENCES "public"."instances"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "uq_dead_letters_letter" ON "dead_letters" USING btree ("letter_id");--> statement-breakpoint
CREATE INDEX "idx_dead_letters_failed" ON "dead_letters" USING btree ("failed_at","id");--> statement-breakpoint
CREATE INDEX "idx_dead_letters_instance" ON "dead_letters" USING btree ("instance_id","failed_at");--> statement-breakpoint
CREATE INDEX "idx_dead_letters_code" ON "dead_letters" USING btree ("error_code");
