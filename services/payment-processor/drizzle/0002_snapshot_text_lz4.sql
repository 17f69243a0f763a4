-- Engine snapshots are written and read whole, never queried: JSON text instead of jsonb spares the server parsing
-- a multi-megabyte document on every write, and lz4 compresses it several times faster than the default pglz.
ALTER TABLE "payment"."engine_snapshots" ALTER COLUMN "state" SET DATA TYPE text USING "state"::text;--> statement-breakpoint
DO $$
BEGIN
  ALTER TABLE "payment"."engine_snapshots" ALTER COLUMN "state" SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
  RAISE NOTICE 'PostgreSQL built without lz4: engine snapshots keep the default compression';
END $$;
