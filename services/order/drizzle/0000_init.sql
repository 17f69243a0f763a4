CREATE SCHEMA IF NOT EXISTS "orders";
--> statement-breakpoint
CREATE TABLE "orders"."books" (
	"market" text PRIMARY KEY NOT NULL,
	"seq" numeric(38, 0) NOT NULL,
	"bids" jsonb NOT NULL,
	"asks" jsonb NOT NULL,
	"at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "orders"."candles" (
	"market" text NOT NULL,
	"interval" text NOT NULL,
	"open_time" timestamp with time zone NOT NULL,
	"open_ticks" numeric(38, 0) NOT NULL,
	"open_seq" numeric(38, 0) NOT NULL,
	"high_ticks" numeric(38, 0) NOT NULL,
	"low_ticks" numeric(38, 0) NOT NULL,
	"close_ticks" numeric(38, 0) NOT NULL,
	"close_seq" numeric(38, 0) NOT NULL,
	"volume_lots" numeric(38, 0) NOT NULL,
	"quote_volume" numeric(38, 0) NOT NULL,
	"trades" integer NOT NULL,
	CONSTRAINT "candles_market_interval_open_time_pk" PRIMARY KEY("market","interval","open_time")
);
--> statement-breakpoint
CREATE TABLE "orders"."dead_letters" (
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
CREATE TABLE "orders"."feature_flags" (
	"name" text PRIMARY KEY NOT NULL,
	"enabled" boolean NOT NULL,
	"reason" text,
	"updated_by" text,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "orders"."fills" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"trade_id" uuid NOT NULL,
	"order_id" uuid NOT NULL,
	"user_id" uuid NOT NULL,
	"market" text NOT NULL,
	"side" text NOT NULL,
	"liquidity" text NOT NULL,
	"price_ticks" numeric(38, 0) NOT NULL,
	"quantity_lots" numeric(38, 0) NOT NULL,
	"base_amount" numeric(38, 0) NOT NULL,
	"quote_amount" numeric(38, 0) NOT NULL,
	"fee" numeric(38, 0) NOT NULL,
	"fee_asset" text NOT NULL,
	"executed_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "orders"."idempotency_keys" (
	"principal" text NOT NULL,
	"key" text NOT NULL,
	"method" text NOT NULL,
	"path" text NOT NULL,
	"request_hash" text NOT NULL,
	"status_code" integer,
	"response_body" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "idempotency_keys_principal_key_pk" PRIMARY KEY("principal","key")
);
--> statement-breakpoint
CREATE TABLE "orders"."inbox" (
	"queue" text NOT NULL,
	"message_id" text NOT NULL,
	"type" text NOT NULL,
	"processed_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "inbox_queue_message_id_pk" PRIMARY KEY("queue","message_id")
);
--> statement-breakpoint
CREATE TABLE "orders"."market_state" (
	"market" text PRIMARY KEY NOT NULL,
	"halted" boolean DEFAULT false NOT NULL,
	"halt_reason" text,
	"halted_by" text,
	"halted_at" timestamp with time zone,
	"last_trade_ticks" numeric(38, 0),
	"last_trade_seq" numeric(38, 0),
	"last_trade_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "orders"."orders" (
	"id" uuid PRIMARY KEY NOT NULL,
	"user_id" uuid NOT NULL,
	"client_order_id" text,
	"request_hash" text NOT NULL,
	"market" text NOT NULL,
	"side" text NOT NULL,
	"type" text NOT NULL,
	"price_ticks" numeric(38, 0),
	"quantity_lots" numeric(38, 0) NOT NULL,
	"time_in_force" text NOT NULL,
	"post_only" boolean DEFAULT false NOT NULL,
	"stp" text,
	"hold_asset" text NOT NULL,
	"hold_amount" numeric(38, 0) NOT NULL,
	"quote_budget_tick_lots" numeric(38, 0),
	"protection_price_ticks" numeric(38, 0),
	"status" text NOT NULL,
	"filled_lots" numeric(38, 0) DEFAULT '0' NOT NULL,
	"filled_notional" numeric(38, 0) DEFAULT '0' NOT NULL,
	"reason" text,
	"cancel_requested_at" timestamp with time zone,
	"last_seq" numeric(38, 0),
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "orders"."outbox" (
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
CREATE TABLE "orders"."trades" (
	"trade_id" uuid PRIMARY KEY NOT NULL,
	"market" text NOT NULL,
	"seq" numeric(38, 0) NOT NULL,
	"price_ticks" numeric(38, 0) NOT NULL,
	"quantity_lots" numeric(38, 0) NOT NULL,
	"quote_amount" numeric(38, 0) NOT NULL,
	"taker_side" text NOT NULL,
	"executed_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX "dead_letters_queue_message_idx" ON "orders"."dead_letters" USING btree ("queue","message_id");--> statement-breakpoint
CREATE INDEX "dead_letters_status_idx" ON "orders"."dead_letters" USING btree ("status","id");--> statement-breakpoint
CREATE UNIQUE INDEX "fills_trade_order_idx" ON "orders"."fills" USING btree ("trade_id","order_id");--> statement-breakpoint
CREATE INDEX "fills_user_idx" ON "orders"."fills" USING btree ("user_id","id");--> statement-breakpoint
CREATE INDEX "inbox_processed_at_idx" ON "orders"."inbox" USING btree ("processed_at");--> statement-breakpoint
CREATE UNIQUE INDEX "orders_user_client_order_id_idx" ON "orders"."orders" USING btree ("user_id","client_order_id") WHERE "orders"."orders"."client_order_id" is not null;--> statement-breakpoint
CREATE INDEX "orders_user_id_idx" ON "orders"."orders" USING btree ("user_id","id");--> statement-breakpoint
CREATE INDEX "orders_pending_idx" ON "orders"."orders" USING btree ("created_at") WHERE "orders"."orders"."status" = 'pending';--> statement-breakpoint
CREATE INDEX "outbox_pending_idx" ON "orders"."outbox" USING btree ("sequence") WHERE "orders"."outbox"."sent_at" is null;--> statement-breakpoint
CREATE INDEX "outbox_sent_at_idx" ON "orders"."outbox" USING btree ("sent_at");--> statement-breakpoint
CREATE INDEX "trades_market_seq_idx" ON "orders"."trades" USING btree ("market","seq");--> statement-breakpoint
CREATE INDEX "trades_market_at_idx" ON "orders"."trades" USING btree ("market","executed_at");