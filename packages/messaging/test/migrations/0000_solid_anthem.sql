CREATE SCHEMA IF NOT EXISTS "svc";
--> statement-breakpoint
CREATE TABLE "svc"."dead_letters" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"queue" text NOT NULL,
	"message_id" text NOT NULL,
	"type" text,
	"message" jsonb,
	"body" text,
	"headers" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"reason" text NOT NULL,
	"attempts" integer NOT NULL,
	"status" text DEFAULT 'dead' NOT NULL,
	"dead_lettered_at" timestamp with time zone DEFAULT now() NOT NULL,
	"retried_at" timestamp with time zone,
	"retry_count" integer DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE TABLE "svc"."effects" (
	"message_id" text PRIMARY KEY NOT NULL,
	"seq" integer NOT NULL,
	"applied" integer DEFAULT 1 NOT NULL
);
--> statement-breakpoint
CREATE TABLE "svc"."inbox" (
	"queue" text NOT NULL,
	"message_id" text NOT NULL,
	"type" text NOT NULL,
	"processed_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "inbox_queue_message_id_pk" PRIMARY KEY("queue","message_id")
);
--> statement-breakpoint
CREATE TABLE "svc"."outbox" (
	"sequence" bigserial PRIMARY KEY NOT NULL,
	"message_id" text NOT NULL,
	"type" text NOT NULL,
	"exchange" text NOT NULL,
	"routing_key" text NOT NULL,
	"message" jsonb NOT NULL,
	"headers" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"sent_at" timestamp with time zone,
	"publish_attempts" integer DEFAULT 0 NOT NULL,
	"next_attempt_at" timestamp with time zone,
	"last_error" text
);
--> statement-breakpoint
CREATE UNIQUE INDEX "dead_letters_queue_message_idx" ON "svc"."dead_letters" USING btree ("queue","message_id");--> statement-breakpoint
CREATE INDEX "dead_letters_status_idx" ON "svc"."dead_letters" USING btree ("status","id");--> statement-breakpoint
CREATE INDEX "inbox_processed_at_idx" ON "svc"."inbox" USING btree ("processed_at");--> statement-breakpoint
CREATE INDEX "outbox_pending_idx" ON "svc"."outbox" USING btree ("sequence") WHERE "svc"."outbox"."sent_at" is null;--> statement-breakpoint
CREATE INDEX "outbox_sent_at_idx" ON "svc"."outbox" USING btree ("sent_at");