ALTER TABLE "instances" ADD COLUMN "secrets_sealed" text;--> statement-breakpoint
ALTER TABLE "instances" ADD COLUMN "secret_names" jsonb DEFAULT '[]'::jsonb NOT NULL;