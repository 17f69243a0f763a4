#!/bin/bash
# One logical backup of the exchange database, encrypted before it is written anywhere, copied off-cluster.
# Run by the backup CronJob (templates/backup-cronjob.yaml); the restore drill (tools/ops-tests) runs this same file.
#
#   DATABASE_URL                  the database to dump
#   BACKUP_DIR                    where the encrypted dumps are kept (default /backups)
#   BACKUP_AGE_RECIPIENTS_FILE    age public key(s), one per line: the dump is encrypted to them while it streams out
#                                 of pg_dump, so no plaintext dump ever touches a disk; only the holder of the private
#                                 key (the restore Job's Secret, not this Job's) can read it
#   RETENTION_DAYS                local dumps older than this are deleted after a successful backup (default 14)
#   BACKUP_OFFSITE                rclone destination, e.g. offsite:exchange-backups/prod; empty: no off-site copy.
#                                 The remote comes from RCLONE_CONFIG_OFFSITE_* variables (TYPE=s3, PROVIDER, ENDPOINT,
#                                 ACCESS_KEY_ID, SECRET_ACCESS_KEY, REGION): any S3-compatible object storage
#
# Every run, successful or not, is recorded in auth.backup_runs; the auth service exports the latest success and
# failure times as backup_last_success_timestamp_seconds / backup_last_failure_timestamp_seconds, which the
# BackupFailed and BackupStale alerts watch.
set -euo pipefail
: "${DATABASE_URL:?DATABASE_URL is required}"
: "${BACKUP_AGE_RECIPIENTS_FILE:?BACKUP_AGE_RECIPIENTS_FILE is required: backups are never written unencrypted}"
dir="${BACKUP_DIR:-/backups}"
retention="${RETENTION_DAYS:-14}"
name="exchange-$(date -u +%Y%m%dT%H%M%S)000Z.dump.age"
out="${dir}/${name}"
work="$(mktemp -d)"
started="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
location="$out"

record() { # status, error
  psql "$DATABASE_URL" -q -v ON_ERROR_STOP=1 -v status="$1" -v file="$name" -v location="$location" \
    -v started="$started" -v error="$2" -v bytes="${bytes:-0}" <<'SQL' || echo "backup: could not record the run in auth.backup_runs" >&2
INSERT INTO auth.backup_runs (started_at, finished_at, status, file, location, size_bytes, error)
VALUES (:'started', now(), :'status', :'file', :'location', :'bytes', NULLIF(:'error', ''));
SQL
}
finish() {
  rc=$?
  rm -rf "$work"
  rm -f "${out}.partial"
  if [ "$rc" -ne 0 ]; then
    echo "backup: FAILED (exit $rc; the reason is above)" >&2
    record failed "exit ${rc} at step: ${step}"
  fi
  exit "$rc"
}
step=start
trap finish EXIT

mkdir -p "$dir"
# pg_dump's output goes to age and, through a fifo, to a full pg_restore into /dev/null, which proves the whole
# archive reads back before it is kept (plaintext only in the pipe).
step=dump
mkfifo "$work/check"
pg_restore --file=/dev/null < "$work/check" &
check=$!
pg_dump --format=custom --compress=6 --no-owner "$DATABASE_URL" | tee "$work/check" | age -R "$BACKUP_AGE_RECIPIENTS_FILE" -o "${out}.partial"
step=verify
wait "$check"
mv "${out}.partial" "$out"
(cd "$dir" && sha256sum "$name" > "${name}.sha256")
bytes="$(wc -c < "$out" | tr -d ' ')"
echo "backup: written ${out} (${bytes} bytes, encrypted)"

if [ -n "${BACKUP_OFFSITE:-}" ]; then
  step=offsite
  rclone copyto --retries 3 "$out" "${BACKUP_OFFSITE}/${name}"
  rclone copyto --retries 3 "${out}.sha256" "${BACKUP_OFFSITE}/${name}.sha256"
  rclone check --one-way --size-only "$dir" "$BACKUP_OFFSITE" --include "$name"
  location="${BACKUP_OFFSITE}/${name}"
  echo "backup: copied off-site to ${location}"
fi
step=record
record succeeded ""

step=retention
find "$dir" -maxdepth 1 -name 'exchange-*.dump.age' -mtime "+${retention}" -print -delete
find "$dir" -maxdepth 1 -name 'exchange-*.dump.age.sha256' -mtime "+${retention}" -print -delete
