ALTER TABLE "wallet"."withdrawals" DROP CONSTRAINT "withdrawals_status_check";--> statement-breakpoint
ALTER TABLE "wallet"."withdrawals" ADD COLUMN "confirm_token_hash" text;--> statement-breakpoint
ALTER TABLE "wallet"."withdrawals" ADD COLUMN "confirm_expires_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "wallet"."withdrawals" ADD COLUMN "confirmed_at" timestamp with time zone;--> statement-breakpoint
CREATE UNIQUE INDEX "withdrawals_confirm_token_key" ON "wallet"."withdrawals" USING btree ("confirm_token_hash");--> statement-breakpoint
CREATE INDEX "withdrawals_confirm_expiry_idx" ON "wallet"."withdrawals" USING btree ("confirm_expires_at") WHERE "wallet"."withdrawals"."status" = 'awaiting_confirmation';--> statement-breakpoint
ALTER TABLE "wallet"."withdrawals" ADD CONSTRAINT "withdrawals_status_check" CHECK ("wallet"."withdrawals"."status" IN ('awaiting_confirmation', 'pending', 'processing', 'completed', 'failed', 'cancelled'));