CREATE SCHEMA IF NOT EXISTS "payment";
--> statement-breakpoint
CREATE TABLE "payment"."dead_letters" (
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
CREATE TABLE "payment"."engine_journal" (
	"market" text NOT NULL,
	"seq" bigint NOT NULL,
	"message_id" text NOT NULL,
	"command" jsonb NOT NULL,
	"events" jsonb NOT NULL,
	"book_seq" bigint NOT NULL,
	"applied_by" text NOT NULL,
	"applied_at" timestamp with time zone NOT NULL,
	CONSTRAINT "engine_journal_market_seq_pk" PRIMARY KEY("market","seq")
);
--> statement-breakpoint
CREATE TABLE "payment"."engine_orders" (
	"order_id" text PRIMARY KEY NOT NULL,
	"market" text NOT NULL,
	"user_id" text NOT NULL,
	"placed_seq" bigint,
	"cancel_seq" bigint
);
--> statement-breakpoint
CREATE TABLE "payment"."engine_snapshots" (
	"market" text NOT NULL,
	"seq" bigint NOT NULL,
	"book_seq" bigint NOT NULL,
	"state" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "engine_snapshots_market_seq_pk" PRIMARY KEY("market","seq")
);
--> statement-breakpoint
CREATE TABLE "payment"."engine_state" (
	"market" text PRIMARY KEY NOT NULL,
	"last_seq" bigint DEFAULT 0 NOT NULL,
	"book_seq" bigint DEFAULT 0 NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "payment"."inbox" (
	"queue" text NOT NULL,
	"message_id" text NOT NULL,
	"type" text NOT NULL,
	"processed_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "inbox_queue_message_id_pk" PRIMARY KEY("queue","message_id")
);
--> statement-breakpoint
CREATE TABLE "payment"."outbox" (
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
CREATE TABLE "payment"."payouts" (
	"withdrawal_id" text PRIMARY KEY NOT NULL,
	"user_id" text NOT NULL,
	"asset" text NOT NULL,
	"amount" numeric(38, 0) NOT NULL,
	"address" text NOT NULL,
	"status" text NOT NULL,
	"rail_tx_id" text,
	"failure_reason" text,
	"request_message_id" text NOT NULL,
	"requested_at" timestamp with time zone NOT NULL,
	"processed_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX "dead_letters_queue_message_idx" ON "payment"."dead_letters" USING btree ("queue","message_id");--> statement-breakpoint
CREATE INDEX "dead_letters_status_idx" ON "payment"."dead_letters" USING btree ("status","id");--> statement-breakpoint
CREATE INDEX "engine_journal_message_idx" ON "payment"."engine_journal" USING btree ("message_id");--> statement-breakpoint
CREATE INDEX "inbox_processed_at_idx" ON "payment"."inbox" USING btree ("processed_at");--> statement-breakpoint
CREATE INDEX "outbox_pending_idx" ON "payment"."outbox" USING btree ("sequence") WHERE "payment"."outbox"."sent_at" is null;--> statement-breakpoint
CREATE INDEX "outbox_sent_at_idx" ON "payment"."outbox" USING btree ("sent_at");--> statement-breakpoint
CREATE INDEX "payouts_processed_at_idx" ON "payment"."payouts" USING btree ("processed_at");