ALTER TABLE "instances" ADD COLUMN "stack" varchar(10) DEFAULT '4.1' NOT NULL;--> statement-breakpoint
ALTER TABLE "instances" ADD COLUMN "node_red_version" varchar(40);