-- Custom SQL migration file, put your code below! --
-- Invariant 1, checked once per INSERT statement instead of once per posting at commit: every journal entry the
-- statement adds legs to sums to zero per asset, and every new posting is in its account's asset. The per-row
-- deferred trigger ran two lookups per posting (about 35 µs each here, a fifth of the wallet database's CPU per
-- order); this one runs two set queries per statement over its transition table. It is stricter: an entry's legs go
-- in with one statement (the wallet's insertPostings writes all legs of a batch at once), since an entry that does not
-- balance at the end of a statement is rejected there, not only at commit.
DROP TRIGGER IF EXISTS postings_balanced ON "wallet"."postings";
--> statement-breakpoint
DROP FUNCTION IF EXISTS "wallet".check_posting();
--> statement-breakpoint
CREATE OR REPLACE FUNCTION "wallet".check_postings() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  bad record;
BEGIN
  SELECT n.id, n.asset, n.account_id, a.asset AS held INTO bad
    FROM new_postings n LEFT JOIN "wallet".accounts a ON a.id = n.account_id
   WHERE a.asset IS DISTINCT FROM n.asset
   LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'posting % is in % but account % holds %', bad.id, bad.asset, bad.account_id, bad.held
      USING ERRCODE = 'check_violation';
  END IF;
  SELECT p.entry_id, p.asset, sum(p.amount) AS s INTO bad
    FROM "wallet".postings p
   WHERE p.entry_id IN (SELECT DISTINCT entry_id FROM new_postings)
   GROUP BY p.entry_id, p.asset
  HAVING sum(p.amount) <> 0
   LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'journal entry % does not balance in %: legs sum to %', bad.entry_id, bad.asset, bad.s
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END;
$$;
--> statement-breakpoint
CREATE TRIGGER postings_balanced AFTER INSERT ON "wallet"."postings"
  REFERENCING NEW TABLE AS new_postings FOR EACH STATEMENT EXECUTE FUNCTION "wallet".check_postings();
