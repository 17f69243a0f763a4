CREATE TABLE "orders"."volume_daily" (
	"user_id" uuid NOT NULL,
	"market" text NOT NULL,
	"day" date NOT NULL,
	"quote_volume" numeric(38, 0) NOT NULL,
	CONSTRAINT "volume_daily_user_id_market_day_pk" PRIMARY KEY("user_id","market","day")
);
--> statement-breakpoint
INSERT INTO "orders"."volume_daily" ("user_id", "market", "day", "quote_volume")
SELECT "user_id", "market", ("executed_at" AT TIME ZONE 'UTC')::date, sum("quote_amount")
  FROM "orders"."fills"
 WHERE "executed_at" >= date_trunc('day', now() AT TIME ZONE 'UTC') - interval '30 days'
 GROUP BY 1, 2, 3;--> statement-breakpoint
DROP INDEX IF EXISTS "orders"."fills_user_market_at_idx";
