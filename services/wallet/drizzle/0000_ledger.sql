CREATE TABLE "wallet"."accounts" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"kind" text NOT NULL,
	"user_id" uuid,
	"asset" text NOT NULL,
	"balance" numeric(38, 0) DEFAULT '0' NOT NULL,
	"held" numeric(38, 0) DEFAULT '0' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "accounts_kind_check" CHECK ("wallet"."accounts"."kind" IN ('user', 'fees', 'deposit_rail', 'withdrawal_rail')),
	CONSTRAINT "accounts_owner_check" CHECK (("wallet"."accounts"."kind" = 'user') = ("wallet"."accounts"."user_id" IS NOT NULL)),
	CONSTRAINT "accounts_user_balance_nonnegative" CHECK ("wallet"."accounts"."kind" <> 'user' OR "wallet"."accounts"."balance" >= 0),
	CONSTRAINT "accounts_held_nonnegative" CHECK ("wallet"."accounts"."held" >= 0),
	CONSTRAINT "accounts_held_within_total" CHECK ("wallet"."accounts"."kind" <> 'user' OR "wallet"."accounts"."held" <= "wallet"."accounts"."balance"),
	CONSTRAINT "accounts_system_never_held" CHECK ("wallet"."accounts"."kind" = 'user' OR "wallet"."accounts"."held" = 0)
);
--> statement-breakpoint
CREATE TABLE "wallet"."audit_events" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	"actor" text NOT NULL,
	"action" text NOT NULL,
	"subject_type" text,
	"subject_id" text,
	"outcome" text NOT NULL,
	"details" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"request_id" text
);
--> statement-breakpoint
CREATE TABLE "wallet"."dead_letters" (
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
CREATE TABLE "wallet"."deposits" (
	"id" uuid PRIMARY KEY NOT NULL,
	"user_id" uuid NOT NULL,
	"asset" text NOT NULL,
	"amount" numeric(38, 0) NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"confirm_at" timestamp with time zone NOT NULL,
	"confirmed_at" timestamp with time zone,
	"entry_id" bigint,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "deposits_status_check" CHECK ("wallet"."deposits"."status" IN ('pending', 'confirmed')),
	CONSTRAINT "deposits_amount_positive" CHECK ("wallet"."deposits"."amount" > 0),
	CONSTRAINT "deposits_confirmed_check" CHECK (("wallet"."deposits"."status" = 'confirmed') = ("wallet"."deposits"."entry_id" IS NOT NULL))
);
--> statement-breakpoint
CREATE TABLE "wallet"."feature_flags" (
	"name" text PRIMARY KEY NOT NULL,
	"enabled" boolean NOT NULL,
	"reason" text,
	"updated_by" text,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "wallet"."holds" (
	"id" uuid PRIMARY KEY NOT NULL,
	"user_id" uuid NOT NULL,
	"account_id" bigint NOT NULL,
	"asset" text NOT NULL,
	"amount" numeric(38, 0) NOT NULL,
	"captured" numeric(38, 0) DEFAULT '0' NOT NULL,
	"released" numeric(38, 0) DEFAULT '0' NOT NULL,
	"late_captured" numeric(38, 0) DEFAULT '0' NOT NULL,
	"status" text DEFAULT 'active' NOT NULL,
	"reason" text NOT NULL,
	"ref_type" text NOT NULL,
	"ref_id" text NOT NULL,
	"release_reason" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"closed_at" timestamp with time zone,
	CONSTRAINT "holds_status_check" CHECK ("wallet"."holds"."status" IN ('active', 'captured', 'released')),
	CONSTRAINT "holds_amount_positive" CHECK ("wallet"."holds"."amount" > 0),
	CONSTRAINT "holds_parts_check" CHECK ("wallet"."holds"."captured" >= 0 AND "wallet"."holds"."released" >= 0 AND "wallet"."holds"."late_captured" >= 0 AND "wallet"."holds"."captured" + "wallet"."holds"."released" <= "wallet"."holds"."amount"),
	CONSTRAINT "holds_closed_check" CHECK (("wallet"."holds"."status" = 'active') = ("wallet"."holds"."captured" + "wallet"."holds"."released" < "wallet"."holds"."amount") AND ("wallet"."holds"."status" <> 'captured' OR "wallet"."holds"."released" = 0))
);
--> statement-breakpoint
CREATE TABLE "wallet"."idempotency_keys" (
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
CREATE TABLE "wallet"."inbox" (
	"queue" text NOT NULL,
	"message_id" text NOT NULL,
	"type" text NOT NULL,
	"processed_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "inbox_queue_message_id_pk" PRIMARY KEY("queue","message_id")
);
--> statement-breakpoint
CREATE TABLE "wallet"."journal_entries" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"idempotency_key" text NOT NULL,
	"reason" text NOT NULL,
	"ref_type" text NOT NULL,
	"ref_id" text NOT NULL,
	"causation_id" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "journal_entries_idempotency_key_unique" UNIQUE("idempotency_key")
);
--> statement-breakpoint
CREATE TABLE "wallet"."outbox" (
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
CREATE TABLE "wallet"."postings" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"entry_id" bigint NOT NULL,
	"account_id" bigint NOT NULL,
	"asset" text NOT NULL,
	"amount" numeric(38, 0) NOT NULL,
	"balance_after" numeric(38, 0) NOT NULL,
	"memo" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "postings_amount_nonzero" CHECK ("wallet"."postings"."amount" <> 0)
);
--> statement-breakpoint
CREATE TABLE "wallet"."rail_transactions" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"direction" text NOT NULL,
	"asset" text NOT NULL,
	"amount" numeric(38, 0) NOT NULL,
	"deposit_id" uuid,
	"withdrawal_id" uuid,
	"rail_tx_id" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "rail_transactions_deposit_unique" UNIQUE("deposit_id"),
	CONSTRAINT "rail_transactions_withdrawal_unique" UNIQUE("withdrawal_id"),
	CONSTRAINT "rail_direction_check" CHECK ("wallet"."rail_transactions"."direction" IN ('in', 'out')),
	CONSTRAINT "rail_ref_check" CHECK (("wallet"."rail_transactions"."direction" = 'in' AND "wallet"."rail_transactions"."deposit_id" IS NOT NULL AND "wallet"."rail_transactions"."withdrawal_id" IS NULL) OR ("wallet"."rail_transactions"."direction" = 'out' AND "wallet"."rail_transactions"."withdrawal_id" IS NOT NULL AND "wallet"."rail_transactions"."deposit_id" IS NULL))
);
--> statement-breakpoint
CREATE TABLE "wallet"."reconciliation_reports" (
	"id" uuid PRIMARY KEY NOT NULL,
	"trigger" text NOT NULL,
	"requested_by" text,
	"status" text NOT NULL,
	"mismatch_count" integer NOT NULL,
	"started_at" timestamp with time zone NOT NULL,
	"finished_at" timestamp with time zone NOT NULL,
	"report" jsonb NOT NULL,
	CONSTRAINT "reconciliation_status_check" CHECK ("wallet"."reconciliation_reports"."status" IN ('ok', 'mismatch'))
);
--> statement-breakpoint
CREATE TABLE "wallet"."settlements" (
	"trade_id" uuid PRIMARY KEY NOT NULL,
	"market" text NOT NULL,
	"entry_id" bigint NOT NULL,
	"message_id" text NOT NULL,
	"settled_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "wallet"."user_profiles" (
	"user_id" uuid PRIMARY KEY NOT NULL,
	"kyc_tier" integer DEFAULT 0 NOT NULL,
	"updated_by" text NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "user_profiles_tier_check" CHECK ("wallet"."user_profiles"."kyc_tier" >= 0 AND "wallet"."user_profiles"."kyc_tier" <= 9)
);
--> statement-breakpoint
CREATE TABLE "wallet"."withdrawals" (
	"id" uuid PRIMARY KEY NOT NULL,
	"user_id" uuid NOT NULL,
	"asset" text NOT NULL,
	"amount" numeric(38, 0) NOT NULL,
	"fee" numeric(38, 0) NOT NULL,
	"address" text NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"dispatch_at" timestamp with time zone NOT NULL,
	"rail_tx_id" text,
	"failure_reason" text,
	"entry_id" bigint,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "withdrawals_status_check" CHECK ("wallet"."withdrawals"."status" IN ('pending', 'processing', 'completed', 'failed', 'cancelled')),
	CONSTRAINT "withdrawals_amounts_check" CHECK ("wallet"."withdrawals"."amount" > 0 AND "wallet"."withdrawals"."fee" >= 0)
);
--> statement-breakpoint
ALTER TABLE "wallet"."deposits" ADD CONSTRAINT "deposits_entry_id_journal_entries_id_fk" FOREIGN KEY ("entry_id") REFERENCES "wallet"."journal_entries"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "wallet"."holds" ADD CONSTRAINT "holds_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "wallet"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "wallet"."postings" ADD CONSTRAINT "postings_entry_id_journal_entries_id_fk" FOREIGN KEY ("entry_id") REFERENCES "wallet"."journal_entries"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "wallet"."postings" ADD CONSTRAINT "postings_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "wallet"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "wallet"."settlements" ADD CONSTRAINT "settlements_entry_id_journal_entries_id_fk" FOREIGN KEY ("entry_id") REFERENCES "wallet"."journal_entries"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "wallet"."withdrawals" ADD CONSTRAINT "withdrawals_entry_id_journal_entries_id_fk" FOREIGN KEY ("entry_id") REFERENCES "wallet"."journal_entries"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "accounts_user_asset_idx" ON "wallet"."accounts" USING btree ("user_id","asset") WHERE "wallet"."accounts"."kind" = 'user';--> statement-breakpoint
CREATE UNIQUE INDEX "accounts_system_asset_idx" ON "wallet"."accounts" USING btree ("kind","asset") WHERE "wallet"."accounts"."kind" <> 'user';--> statement-breakpoint
CREATE INDEX "audit_events_at_idx" ON "wallet"."audit_events" USING btree ("at");--> statement-breakpoint
CREATE INDEX "audit_events_actor_idx" ON "wallet"."audit_events" USING btree ("actor","at");--> statement-breakpoint
CREATE UNIQUE INDEX "dead_letters_queue_message_idx" ON "wallet"."dead_letters" USING btree ("queue","message_id");--> statement-breakpoint
CREATE INDEX "dead_letters_status_idx" ON "wallet"."dead_letters" USING btree ("status","id");--> statement-breakpoint
CREATE INDEX "deposits_user_idx" ON "wallet"."deposits" USING btree ("user_id","created_at");--> statement-breakpoint
CREATE INDEX "deposits_due_idx" ON "wallet"."deposits" USING btree ("confirm_at") WHERE "wallet"."deposits"."status" = 'pending';--> statement-breakpoint
CREATE INDEX "holds_active_idx" ON "wallet"."holds" USING btree ("account_id") WHERE "wallet"."holds"."status" = 'active';--> statement-breakpoint
CREATE INDEX "holds_user_idx" ON "wallet"."holds" USING btree ("user_id","created_at");--> statement-breakpoint
CREATE INDEX "inbox_processed_at_idx" ON "wallet"."inbox" USING btree ("processed_at");--> statement-breakpoint
CREATE INDEX "journal_entries_ref_idx" ON "wallet"."journal_entries" USING btree ("ref_type","ref_id");--> statement-breakpoint
CREATE INDEX "outbox_pending_idx" ON "wallet"."outbox" USING btree ("sequence") WHERE "wallet"."outbox"."sent_at" is null;--> statement-breakpoint
CREATE INDEX "outbox_sent_at_idx" ON "wallet"."outbox" USING btree ("sent_at");--> statement-breakpoint
CREATE INDEX "postings_account_idx" ON "wallet"."postings" USING btree ("account_id","id");--> statement-breakpoint
CREATE INDEX "postings_entry_idx" ON "wallet"."postings" USING btree ("entry_id");--> statement-breakpoint
CREATE INDEX "reconciliation_reports_started_idx" ON "wallet"."reconciliation_reports" USING btree ("started_at");--> statement-breakpoint
CREATE INDEX "withdrawals_user_idx" ON "wallet"."withdrawals" USING btree ("user_id","created_at");--> statement-breakpoint
CREATE INDEX "withdrawals_velocity_idx" ON "wallet"."withdrawals" USING btree ("user_id","asset","created_at");--> statement-breakpoint
CREATE INDEX "withdrawals_due_idx" ON "wallet"."withdrawals" USING btree ("dispatch_at") WHERE "wallet"."withdrawals"."status" = 'pending';