#!/bin/bash
# Restore of one encrypted dump over the exchange database (DANGER: replaces it). Run by the restore Job
# (templates/restore-job.yaml); the restore drill (tools/ops-tests) runs this same file.
#
#   DATABASE_URL                 the database to replace
#   DUMP                         the dump: a path (/backups/exchange-….dump.age) or an rclone remote path
#                                (offsite:bucket/prefix/exchange-….dump.age, remote from RCLONE_CONFIG_OFFSITE_*)
#   BACKUP_AGE_IDENTITY_FILE     the age private key matching the backup recipients (a Secret only restores mount)
#   RESTORE_WAIT_SECONDS         how long to wait for the services' connections to go (default 600)
#
# It first waits until no application connection is left (the services are scaled to 0 while restore.enabled is
# set; a straggler still writing would otherwise interleave with the restore), then, in ONE transaction, drops every
# application schema and replays the dump. Dropping first matters when the dump predates a migration: objects only
# the newer schema has (a new table) would otherwise survive, and the services' migrations, replayed at start from
# the dump's older migration history, would fail on them.
set -euo pipefail
: "${DATABASE_URL:?DATABASE_URL is required}"
: "${DUMP:?DUMP is required}"
: "${BACKUP_AGE_IDENTITY_FILE:?BACKUP_AGE_IDENTITY_FILE is required}"
wait_s="${RESTORE_WAIT_SECONDS:-600}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

file="$DUMP"
if [[ "$DUMP" != /* && "$DUMP" == *:* ]]; then
  rclone copyto --retries 3 "$DUMP" "$work/dump.age"
  rclone copyto --retries 3 "${DUMP}.sha256" "$work/dump.age.sha256" 2>/dev/null || true
  file="$work/dump.age"
  [ -f "$work/dump.age.sha256" ] && echo "$(cut -d' ' -f1 "$work/dump.age.sha256")  $file" > "$work/check.sha256"
elif [ -f "${DUMP}.sha256" ]; then
  echo "$(cut -d' ' -f1 "${DUMP}.sha256")  $file" > "$work/check.sha256"
fi
test -f "$file" || { echo "restore: $DUMP not found" >&2; exit 1; }
if [ -f "$work/check.sha256" ]; then sha256sum -c "$work/check.sha256"; fi

apps="^(auth|wallet|order|payment-processor)([:-]|$)"
deadline=$(( $(date +%s) + wait_s ))
while :; do
  left="$(psql "$DATABASE_URL" -Atq -v apps="$apps" <<'SQL'
SELECT string_agg(application_name || ' (pid ' || pid || ')', ', ') FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name ~ :'apps';
SQL
)"
  [ -z "$left" ] && break
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "restore: application connections still open after ${wait_s}s: ${left}; are the services scaled to 0?" >&2
    exit 1
  fi
  echo "restore: waiting for application connections to close: ${left}"
  sleep 2
done

echo "restore: replacing the database from $DUMP"
{
  psql "$DATABASE_URL" -Atq <<'SQL'
SELECT format('DROP SCHEMA %I CASCADE;', nspname) FROM pg_namespace
WHERE nspname NOT IN ('public', 'information_schema') AND nspname NOT LIKE 'pg\_%';
SQL
  age -d -i "$BACKUP_AGE_IDENTITY_FILE" "$file" | pg_restore --clean --if-exists --no-owner --exit-on-error --file=-
} | psql "$DATABASE_URL" -q --single-transaction -v ON_ERROR_STOP=1 > /dev/null
# A dump carries no planner statistics. The services prepare each statement once per connection and keep its plan until
# the table's statistics change, so they should start on analyzed tables, not wait for autovacuum.
echo "restore: gathering planner statistics (ANALYZE)"
psql "$DATABASE_URL" -q -v ON_ERROR_STOP=1 -c ANALYZE
echo "restore: done"
