{{/* Chart name, truncated to the 63 characters a DNS label allows. */}}
{{- define "warden.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name: the release name, prefixed with the chart name unless it already contains it. */}}
{{- define "warden.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "warden.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels shared by every object of the release. */}}
{{- define "warden.labels" -}}
helm.sh/chart: {{ include "warden.chart" . }}
app.kubernetes.io/name: {{ include "warden.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: warden
{{- end }}

{{/*
Selector of the serving pods. The component label keeps the migration Job's pod out of the
Service, the PodDisruptionBudget and the ServiceMonitor.
*/}}
{{- define "warden.selectorLabels" -}}
app.kubernetes.io/name: {{ include "warden.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end }}

{{- define "warden.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "warden.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret holding the database URL and the HS256 secret. */}}
{{- define "warden.secretName" -}}
{{- if .Values.existingSecret }}
{{- .Values.existingSecret }}
{{- else }}
{{- include "warden.fullname" . }}
{{- end }}
{{- end }}

{{- define "warden.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* WARDEN_SHUTDOWN_GRACE, rendered from shutdownGraceSeconds so the pod's grace period always covers it. */}}
{{- define "warden.shutdownGrace" -}}
{{- printf "%ds" (int .Values.shutdownGraceSeconds) }}
{{- end }}

{{/* preStop pause + drain + margin: Kubernetes must never kill a replica mid-drain. */}}
{{- define "warden.terminationGracePeriodSeconds" -}}
{{- add (int .Values.preStopSleepSeconds) (int .Values.shutdownGraceSeconds) (int .Values.terminationGraceMarginSeconds) }}
{{- end }}

{{/* Checksum of the chart-managed Secret's content, so pods roll when it changes. */}}
{{- define "warden.secretChecksum" -}}
{{- dict "url" .Values.database.url "hs256" .Values.auth.hs256Secret "keys" .Values.secretKeys | toJson | sha256sum }}
{{- end }}

{{/*
Configuration shared by the server and the migration Job: secrets by reference, the rest as
plain values. Names follow shared/OPERATIONS.md.
*/}}
{{- define "warden.env" -}}
- name: WARDEN_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "warden.secretName" . }}
      key: {{ .Values.secretKeys.databaseUrl }}
{{- if .Values.existingSecret }}
- name: WARDEN_AUTH_HS256_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "warden.secretName" . }}
      key: {{ .Values.secretKeys.hs256Secret }}
      optional: true
{{- else if .Values.auth.hs256Secret }}
- name: WARDEN_AUTH_HS256_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "warden.secretName" . }}
      key: {{ .Values.secretKeys.hs256Secret }}
{{- end }}
{{- with .Values.auth.publicKeys }}
{{- if .existingSecret }}
{{- $dir := trimSuffix "/" .mountPath }}
{{- $paths := list }}
{{- range .files }}
{{- $paths = append $paths (printf "%s/%s" $dir .) }}
{{- end }}
- name: WARDEN_AUTH_PUBLIC_KEY_FILES
  value: {{ join "," $paths | quote }}
{{- end }}
{{- end }}
{{- with .Values.auth.jwks }}
- name: WARDEN_AUTH_JWKS
  value: {{ . | quote }}
{{- end }}
- name: WARDEN_AUTH_ISSUER
  value: {{ required "auth.issuer is required: Warden refuses tokens without an issuer outside --dev" .Values.auth.issuer | quote }}
- name: WARDEN_AUTH_AUDIENCE
  value: {{ required "auth.audience is required: Warden refuses tokens without an audience outside --dev" .Values.auth.audience | quote }}
{{- with .Values.auth.tenantClaim }}
- name: WARDEN_AUTH_TENANT_CLAIM
  value: {{ . | quote }}
{{- end }}
{{- with .Values.auth.defaultTenant }}
- name: WARDEN_DEFAULT_TENANT
  value: {{ . | quote }}
{{- end }}
{{- with .Values.platformTenant }}
- name: WARDEN_PLATFORM_TENANT
  value: {{ . | quote }}
{{- end }}
{{- with .Values.bootstrapAdmins }}
- name: WARDEN_BOOTSTRAP_ADMINS
  value: {{ join "," . | quote }}
{{- end }}
- name: WARDEN_DATABASE_MAX_CONNECTIONS
  value: {{ .Values.database.maxConnections | quote }}
- name: WARDEN_LOG_FORMAT
  value: {{ .Values.logging.format | quote }}
- name: RUST_LOG
  value: {{ .Values.logging.level | quote }}
{{- with .Values.otel.endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Volumes shared by the server and the migration Job. */}}
{{- define "warden.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- if .Values.auth.publicKeys.existingSecret }}
- name: public-keys
  secret:
    secretName: {{ .Values.auth.publicKeys.existingSecret }}
    defaultMode: 0444
{{- end }}
{{- end }}

{{- define "warden.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .Values.auth.publicKeys.existingSecret }}
- name: public-keys
  mountPath: {{ .Values.auth.publicKeys.mountPath }}
  readOnly: true
{{- end }}
{{- end }}

{{/*
TLS on the gRPC port (with tls.existingSecret set), for the server only: the migration Job serves
nothing and must not wait for a Secret that may not exist yet. The Secrets are mounted as
directories, never with subPath, so renewals reach the pod.
*/}}
{{- define "warden.tlsEnv" -}}
- name: WARDEN_TLS_CERT_FILE
  value: {{ printf "%s/tls.crt" (trimSuffix "/" .Values.tls.mountPath) | quote }}
- name: WARDEN_TLS_KEY_FILE
  value: {{ printf "%s/tls.key" (trimSuffix "/" .Values.tls.mountPath) | quote }}
{{- if .Values.tls.clientCaSecret }}
- name: WARDEN_TLS_CLIENT_CA_FILE
  value: {{ printf "%s/ca.crt" (trimSuffix "/" .Values.tls.clientCaMountPath) | quote }}
{{- end }}
{{- end }}

{{- define "warden.tlsVolumes" -}}
- name: tls
  secret:
    secretName: {{ .Values.tls.existingSecret }}
    defaultMode: 0444
{{- if .Values.tls.clientCaSecret }}
- name: client-ca
  secret:
    secretName: {{ .Values.tls.clientCaSecret }}
    defaultMode: 0444
{{- end }}
{{- end }}

{{- define "warden.tlsVolumeMounts" -}}
- name: tls
  mountPath: {{ .Values.tls.mountPath }}
  readOnly: true
{{- if .Values.tls.clientCaSecret }}
- name: client-ca
  mountPath: {{ .Values.tls.clientCaMountPath }}
  readOnly: true
{{- end }}
{{- end }}

{{/* The gRPC port's appProtocol: none while it speaks TLS (it is not cleartext HTTP/2 then). */}}
{{- define "warden.grpcAppProtocol" -}}
{{- if not .Values.tls.existingSecret }}{{ .Values.service.grpcAppProtocol }}{{ end }}
{{- end }}

{{/* A map of strings as `k=v, k=v` (sorted), or `none`; for NOTES.txt. */}}
{{- define "warden.inlineMap" -}}
{{- $pairs := list }}
{{- range $k, $v := . }}{{ $pairs = append $pairs (printf "%s=%s" $k $v) }}{{ end }}
{{- join ", " $pairs | default "none" }}
{{- end }}

{{/* Checks of value combinations that the schema cannot express. */}}
{{- define "warden.validate" -}}
{{- if and .Values.auth.publicKeys.existingSecret (not .Values.auth.publicKeys.files) }}
{{- fail "auth.publicKeys.files must list at least one key of auth.publicKeys.existingSecret" }}
{{- end }}
{{- if and .Values.pdb.enabled (not (kindIs "invalid" .Values.pdb.minAvailable)) (not (kindIs "invalid" .Values.pdb.maxUnavailable)) }}
{{- fail "pdb: set only one of minAvailable and maxUnavailable" }}
{{- end }}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- fail "autoscaling.minReplicas must not exceed autoscaling.maxReplicas" }}
{{- end }}
{{- if not (or .Values.existingSecret .Values.auth.hs256Secret .Values.auth.publicKeys.existingSecret .Values.auth.jwks) }}
{{- fail "no token key configured: set auth.hs256Secret, auth.publicKeys or auth.jwks (or existingSecret with the HS256 secret)" }}
{{- end }}
{{- if and .Values.tls.clientCaSecret (not .Values.tls.existingSecret) }}
{{- fail "tls.clientCaSecret needs tls.existingSecret: client certificates are only asked for over TLS" }}
{{- end }}
{{- if and (not .Values.existingSecret) (not .Values.database.url) }}
{{- fail "database.url is required unless existingSecret names a Secret holding it" }}
{{- end }}
{{- end }}
