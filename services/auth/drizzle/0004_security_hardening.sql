CREATE TABLE "auth"."spent_challenges" (
	"signature" text PRIMARY KEY NOT NULL,
	"expires_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
ALTER TABLE "auth"."api_keys" ADD COLUMN "revoked_reason" text;--> statement-breakpoint
ALTER TABLE "auth"."api_keys" ADD COLUMN "expires_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "auth"."api_keys" ADD COLUMN "allowed_ips" "cidr"[];--> statement-breakpoint
ALTER TABLE "auth"."signing_keys" ADD COLUMN "revoked_at" timestamp with time zone;--> statement-breakpoint
-- Count-and-check in one statement: the attempt is counted under the row lock before it is judged, so N parallel
-- attempts see N different counts (no check-then-count race). A blocked attempt is not counted (it cannot extend a
-- lock). p_soft: failures from which the next attempt must wait p_base_ms·2^(n-p_soft) (≤ p_max_ms); p_lock:
-- failures at which the key is locked for p_window_s (0 = never); p_window_s: also how long failures are counted.
CREATE OR REPLACE FUNCTION "auth"."throttle_attempt"(
  p_kind text, p_key text, p_soft integer, p_lock integer, p_base_ms bigint, p_window_s integer, p_max_ms bigint
) RETURNS TABLE (blocked boolean, reason text, retry_ms bigint, failures integer) LANGUAGE plpgsql AS $$
DECLARE
  r "auth"."login_throttle";
  t timestamptz := clock_timestamp();
  n integer;
  started timestamptz;
  backoff bigint;
BEGIN
  INSERT INTO "auth"."login_throttle" (kind, key, failures, window_started_at) VALUES (p_kind, p_key, 0, t)
    ON CONFLICT DO NOTHING;
  SELECT * INTO r FROM "auth"."login_throttle" lt WHERE lt.kind = p_kind AND lt.key = p_key FOR UPDATE;
  IF r.locked_until > t THEN
    RETURN QUERY SELECT true, 'locked'::text, ceil(extract(epoch FROM r.locked_until - t) * 1000)::bigint, r.failures;
    RETURN;
  END IF;
  IF r.next_allowed_at > t THEN
    RETURN QUERY SELECT true, 'throttled'::text, ceil(extract(epoch FROM r.next_allowed_at - t) * 1000)::bigint,
      r.failures;
    RETURN;
  END IF;
  IF r.window_started_at < t - make_interval(secs => p_window_s) THEN
    n := 1;
    started := t;
  ELSE
    n := r.failures + 1;
    started := r.window_started_at;
  END IF;
  backoff := CASE WHEN n >= p_soft THEN least(p_base_ms * power(2, least(n - p_soft, 30))::bigint, p_max_ms) ELSE 0 END;
  UPDATE "auth"."login_throttle" lt SET failures = n, window_started_at = started,
      next_allowed_at = CASE WHEN backoff > 0 THEN t + backoff * interval '1 millisecond' END,
      locked_until = CASE WHEN p_lock > 0 AND n >= p_lock THEN t + make_interval(secs => p_window_s) END
    WHERE lt.kind = p_kind AND lt.key = p_key;
  RETURN QUERY SELECT false, NULL::text, 0::bigint, n;
END;
$$;
--> statement-breakpoint
-- The API-key verifier is handed the client IP as text; anything that is not an address must not raise.
CREATE OR REPLACE FUNCTION "auth"."inet_or_null"(v text) RETURNS inet LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  RETURN v::inet;
EXCEPTION WHEN others THEN
  RETURN NULL;
END;
$$;
