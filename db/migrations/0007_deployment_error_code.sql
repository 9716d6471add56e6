ALTER TABLE "deployments" ADD COLUMN "error_code" varchar(50);--> statement-breakpoint
-- Rows written before failure reasons had names: the code their message stands for.
UPDATE "deployments" SET "error_code" = CASE
  WHEN "error" LIKE 'smoke tests failed%' THEN 'smoke_failed'
  WHEN "error" LIKE 'post-switch analysis failed%' THEN 'analysis_failed'
  WHEN "error" LIKE 'the bridge did not finish drain%' THEN 'drain_timeout'
  WHEN "error" LIKE 'the bridge did not finish%' THEN 'deadline_exceeded'
  WHEN "error" LIKE 'aborted by an operator%' THEN 'operator_abort'
  WHEN "error" LIKE 'rolled back by an operator%' THEN 'operator_rollback'
  WHEN "error" LIKE 'rollback %' THEN 'rollback_failed'
  WHEN "error" LIKE '%(not_implemented)%' THEN 'not_implemented'
  WHEN "error" LIKE '%(green_failed)%' THEN 'green_failed'
  WHEN "error" LIKE 'could not start:%' THEN 'start_failed'
  ELSE 'step_failed' END
WHERE "error" IS NOT NULL AND "error_code" IS NULL;
