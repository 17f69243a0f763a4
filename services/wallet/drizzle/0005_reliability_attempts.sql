CREATE TABLE "wallet"."message_attempts" (
	"queue" text NOT NULL,
	"message_id" text NOT NULL,
	"starts" integer DEFAULT 0 NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "message_attempts_queue_message_id_pk" PRIMARY KEY("queue","message_id")
);
--> statement-breakpoint
ALTER TABLE "wallet"."inbox" ADD COLUMN "digest" text;--> statement-breakpoint
CREATE INDEX "message_attempts_updated_at_idx" ON "wallet"."message_attempts" USING btree ("updated_at");