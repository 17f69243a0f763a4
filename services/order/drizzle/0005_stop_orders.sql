ALTER TABLE "orders"."orders" ADD COLUMN "stop_price_ticks" numeric(38, 0);--> statement-breakpoint
ALTER TABLE "orders"."orders" ADD COLUMN "stop_triggered_at" timestamp with time zone;