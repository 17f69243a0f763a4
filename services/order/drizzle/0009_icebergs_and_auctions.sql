ALTER TABLE "orders"."orders" ADD COLUMN "display_lots" numeric(38, 0);--> statement-breakpoint
ALTER TABLE "orders"."books" ADD COLUMN "auction" jsonb;