-- Every backup run, by the backup CronJob's script (k8s/charts/exchange/files/backup.sh) or POST /api/v1/admin/backups:
-- the source of backup_last_success_timestamp_seconds / backup_last_failure_timestamp_seconds.
CREATE TABLE IF NOT EXISTS "auth"."backup_runs" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"started_at" timestamp with time zone NOT NULL,
	"finished_at" timestamp with time zone DEFAULT now() NOT NULL,
	"status" text NOT NULL,
	"file" text NOT NULL,
	"location" text NOT NULL,
	"size_bytes" bigint DEFAULT 0 NOT NULL,
	"error" text,
	CONSTRAINT "backup_runs_status_check" CHECK ("status" IN ('succeeded', 'failed'))
);
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "backup_runs_status_finished_idx" ON "auth"."backup_runs" ("status", "finished_at");
