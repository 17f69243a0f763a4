{{/* Chart name and version label. */}}
{{- define "exchange.chart" -}}
{{ .Chart.Name }}-{{ .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "exchange.labels" -}}
helm.sh/chart: {{ include "exchange.chart" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: exchange
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ include "exchange.tag" . | quote }}
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "name" "order") */}}
{{- define "exchange.selectorLabels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{/* The component name label alone, for objects that also carry exchange.labels (which has the instance). */}}
{{- define "exchange.componentLabels" -}}
app.kubernetes.io/name: {{ .name }}
{{- end -}}

{{- define "exchange.tag" -}}
{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* The one image of the services, pinned by digest when given. */}}
{{- define "exchange.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ include "exchange.tag" . }}
{{- end -}}
{{- end -}}

{{/* Pod-level security context: non-root, fixed uid/gid of the image's `node` user, RuntimeDefault seccomp. */}}
{{- define "exchange.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .uid | default 1000 }}
runAsGroup: {{ .uid | default 1000 }}
fsGroup: {{ .uid | default 1000 }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Container-level security context: read-only root, no privilege escalation, every capability dropped. */}}
{{- define "exchange.containerSecurityContext" -}}
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop:
    - ALL
{{- end -}}

{{/* Environment shared by the services and the migration Job: every secret through secretKeyRef. */}}
{{- /* DATABASE_URL is per service: exchange.databaseEnv. */}}
{{- define "exchange.commonEnv" -}}
- name: NODE_ENV
  value: production
- name: LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
- name: SERVICE_VERSION
  value: {{ include "exchange.tag" . | quote }}
- name: JWT_ISSUER
  value: {{ .Values.jwt.issuer | quote }}
- name: JWT_AUDIENCE
  value: {{ .Values.jwt.audience | quote }}
{{- if .Values.telemetry.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ .Values.telemetry.otlpEndpoint | quote }}
{{- end }}
{{- end -}}

{{/* RabbitMQ and JWT verification: wallet, order and payment-processor (auth uses neither). */}}
{{- define "exchange.messagingEnv" -}}
- name: AMQP_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.secrets.amqp }}
      key: AMQP_URL
- name: AUTH_JWKS_URL
  value: "http://auth:{{ .Values.services.auth.port }}/.well-known/jwks.json"
{{- end -}}

{{/* Name of the restore Job: the dump's name made DNS-safe. */}}
{{- define "exchange.restoreJobName" -}}
{{- $file := regexReplaceAll "[^a-z0-9-]+" (.Values.restore.file | trimSuffix ".age" | trimSuffix ".dump" | lower) "-" -}}
{{ printf "%s-restore-%s" .Release.Name $file | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{/* Name of the backup claim. */}}
{{- define "exchange.backupClaim" -}}
{{ .Values.backup.persistence.existingClaim | default (printf "%s-backups" .Release.Name) }}
{{- end -}}

{{/* rclone's remote "offsite" (S3-compatible object storage) from backup.offsite, credentials from its Secret. */}}
{{- define "exchange.rcloneEnv" -}}
{{- $o := .Values.backup.offsite -}}
- { name: RCLONE_CONFIG_OFFSITE_TYPE, value: s3 }
- { name: RCLONE_CONFIG_OFFSITE_PROVIDER, value: {{ $o.provider | quote }} }
- { name: RCLONE_CONFIG_OFFSITE_ENDPOINT, value: {{ $o.endpoint | quote }} }
- { name: RCLONE_CONFIG_OFFSITE_REGION, value: {{ $o.region | quote }} }
- name: RCLONE_CONFIG_OFFSITE_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef: { name: {{ $o.secret }}, key: ACCESS_KEY_ID }
- name: RCLONE_CONFIG_OFFSITE_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef: { name: {{ $o.secret }}, key: SECRET_ACCESS_KEY }
{{- end -}}

{{/*
Where the data stores and the trace collector are, for NetworkPolicy egress: CIDRs (external databases, nodes) and
peer selectors (in-cluster PostgreSQL, RabbitMQ, Redis, Jaeger: CNIs such as Cilium match pods by identity, not by
ipBlock, so a pod-IP CIDR alone does not let the traffic through). Argument: .Values.networkPolicy.
*/}}
{{- define "exchange.egressPeers" -}}
{{- range $cidr := .egressCIDRs }}
- ipBlock:
    cidr: {{ $cidr }}
{{- end }}
{{- range $peer := .egressPeers }}
- {{- toYaml $peer | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
One service's database URL (env `var`, default DATABASE_URL): its own role's Secret (secrets.serviceDatabases.<name>,
the role owning only its schema), else the shared secrets.database. Call with (dict "root" $ "name" "auth").
*/}}
{{- define "exchange.databaseEnv" -}}
{{- $secret := index .root.Values.secrets.serviceDatabases .name | default .root.Values.secrets.database -}}
- name: {{ .var | default "DATABASE_URL" }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: DATABASE_URL
{{- end -}}
