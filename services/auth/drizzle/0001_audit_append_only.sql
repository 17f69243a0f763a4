-- The audit trail is append-only for real: any UPDATE, DELETE or TRUNCATE of auth.audit_log raises.
CREATE OR REPLACE FUNCTION "auth"."audit_log_reject_change"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'auth.audit_log is append-only (% rejected)', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;
--> statement-breakpoint
CREATE TRIGGER "audit_log_no_update_delete" BEFORE UPDATE OR DELETE ON "auth"."audit_log"
  FOR EACH ROW EXECUTE FUNCTION "auth"."audit_log_reject_change"();
--> statement-breakpoint
CREATE TRIGGER "audit_log_no_truncate" BEFORE TRUNCATE ON "auth"."audit_log"
  FOR EACH STATEMENT EXECUTE FUNCTION "auth"."audit_log_reject_change"();
