-- Custom SQL migration file, put your code below! --
-- Invariant 3: the journal (entries and postings), the rail records and the audit trail are append-only.
CREATE OR REPLACE FUNCTION "wallet".reject_mutation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'wallet.%: % is not allowed (append-only)', TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'integrity_constraint_violation';
END;
$$;
--> statement-breakpoint
CREATE TRIGGER journal_entries_append_only BEFORE UPDATE OR DELETE ON "wallet"."journal_entries"
  FOR EACH ROW EXECUTE FUNCTION "wallet".reject_mutation();
--> statement-breakpoint
CREATE TRIGGER journal_entries_no_truncate BEFORE TRUNCATE ON "wallet"."journal_entries"
  FOR EACH STATEMENT EXECUTE FUNCTION "wallet".reject_mutation();
--> statement-breakpoint
CREATE TRIGGER postings_append_only BEFORE UPDATE OR DELETE ON "wallet"."postings"
  FOR EACH ROW EXECUTE FUNCTION "wallet".reject_mutation();
--> statement-breakpoint
CREATE TRIGGER postings_no_truncate BEFORE TRUNCATE ON "wallet"."postings"
  FOR EACH STATEMENT EXECUTE FUNCTION "wallet".reject_mutation();
--> statement-breakpoint
CREATE TRIGGER rail_transactions_append_only BEFORE UPDATE OR DELETE ON "wallet"."rail_transactions"
  FOR EACH ROW EXECUTE FUNCTION "wallet".reject_mutation();
--> statement-breakpoint
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON "wallet"."audit_events"
  FOR EACH ROW EXECUTE FUNCTION "wallet".reject_mutation();
--> statement-breakpoint
-- Invariant 1, enforced by the database at commit: every journal entry sums to zero per asset, and a posting's
-- asset is its account's asset. Deferred, so an entry's legs can be inserted one by one inside the transaction.
CREATE OR REPLACE FUNCTION "wallet".check_posting() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  s numeric;
  a text;
BEGIN
  SELECT asset INTO a FROM "wallet".accounts WHERE id = NEW.account_id;
  IF a IS DISTINCT FROM NEW.asset THEN
    RAISE EXCEPTION 'posting % is in % but account % holds %', NEW.id, NEW.asset, NEW.account_id, a
      USING ERRCODE = 'check_violation';
  END IF;
  SELECT COALESCE(SUM(amount), 0) INTO s FROM "wallet".postings WHERE entry_id = NEW.entry_id AND asset = NEW.asset;
  IF s <> 0 THEN
    RAISE EXCEPTION 'journal entry % does not balance in %: legs sum to %', NEW.entry_id, NEW.asset, s
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END;
$$;
--> statement-breakpoint
CREATE CONSTRAINT TRIGGER postings_balanced AFTER INSERT ON "wallet"."postings"
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION "wallet".check_posting();
