CREATE TABLE "orders"."order_amends" (
	"id" uuid PRIMARY KEY NOT NULL,
	"order_id" uuid NOT NULL,
	"user_id" uuid NOT NULL,
	"amend_seq" integer NOT NULL,
	"request_hash" text NOT NULL,
	"price_ticks" numeric(38, 0),
	"quantity_lots" numeric(38, 0),
	"top_up_amount" numeric(38, 0) DEFAULT '0' NOT NULL,
	"status" text NOT NULL,
	"reason" text,
	"priority_kept" boolean,
	"hold_delta" numeric(38, 0),
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "orders"."orders" ADD COLUMN "amend_seq" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
CREATE UNIQUE INDEX "order_amends_order_seq_idx" ON "orders"."order_amends" USING btree ("order_id","amend_seq");--> statement-breakpoint
CREATE INDEX "order_amends_open_idx" ON "orders"."order_amends" USING btree ("created_at") WHERE "orders"."order_amends"."status" in ('pending', 'sent');--> statement-breakpoint
ALTER TABLE "orders"."orders" ADD COLUMN "stop_price_ticks" numeric(38, 0);--> statement-breakpoint
ALTER TABLE "orders"."orders" ADD COLUMN "stop_triggered_at" timestamp with time zone;