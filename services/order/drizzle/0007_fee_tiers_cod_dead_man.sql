CREATE TABLE "orders"."cod_sessions" (
	"id" uuid PRIMARY KEY NOT NULL,
	"user_id" uuid NOT NULL,
	"market" text,
	"instance_id" uuid NOT NULL,
	"opened_at" timestamp with time zone DEFAULT now() NOT NULL,
	"seen_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "orders"."dead_man_switches" (
	"user_id" uuid PRIMARY KEY NOT NULL,
	"timeout_seconds" integer NOT NULL,
	"fires_at" timestamp with time zone NOT NULL,
	"armed_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "orders"."orders" ADD COLUMN "maker_fee_bps" integer;--> statement-breakpoint
ALTER TABLE "orders"."orders" ADD COLUMN "taker_fee_bps" integer;--> statement-breakpoint
CREATE INDEX "cod_sessions_instance_idx" ON "orders"."cod_sessions" USING btree ("instance_id");--> statement-breakpoint
CREATE INDEX "cod_sessions_seen_at_idx" ON "orders"."cod_sessions" USING btree ("seen_at");--> statement-breakpoint
CREATE INDEX "dead_man_switches_fires_at_idx" ON "orders"."dead_man_switches" USING btree ("fires_at");--> statement-breakpoint
CREATE INDEX "fills_user_market_at_idx" ON "orders"."fills" USING btree ("user_id","market","executed_at");