{{/* Names, labels and the few decisions every template shares. */}}

{{- define "genviral-notifier.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name, at most 52 characters so "-dispatcher" / "-metrics" suffixes stay under 63. */}}
{{- define "genviral-notifier.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "genviral-notifier.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "genviral-notifier.labels" -}}
helm.sh/chart: {{ include "genviral-notifier.chart" . }}
{{ include "genviral-notifier.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: genviral-notifier
{{- end }}

{{/* Selects the notifier pods of this release (all roles); the Redis pods carry another name. */}}
{{- define "genviral-notifier.selectorLabels" -}}
app.kubernetes.io/name: {{ include "genviral-notifier.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "genviral-notifier.redis.fullname" -}}
{{- printf "%s-redis" (include "genviral-notifier.fullname" .) }}
{{- end }}

{{- define "genviral-notifier.redis.selectorLabels" -}}
app.kubernetes.io/name: {{ include "genviral-notifier.name" . }}-redis
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "genviral-notifier.redis.labels" -}}
helm.sh/chart: {{ include "genviral-notifier.chart" . }}
{{ include "genviral-notifier.redis.selectorLabels" . }}
app.kubernetes.io/component: redis
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: genviral-notifier
{{- end }}

{{- define "genviral-notifier.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "genviral-notifier.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "genviral-notifier.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* The Deployments: one running every role, or one per role with roles.split. */}}
{{- define "genviral-notifier.roles" -}}
{{- if .Values.roles.split }}api,poller,dispatcher{{ else }}all{{ end }}
{{- end }}

{{/* The Deployment of a role: "all" keeps the bare name. Call with (list $ "api"). */}}
{{- define "genviral-notifier.workloadName" -}}
{{- $root := index . 0 }}{{ $role := index . 1 }}
{{- if eq $role "all" }}{{ include "genviral-notifier.fullname" $root }}
{{- else }}{{ printf "%s-%s" (include "genviral-notifier.fullname" $root) $role }}
{{- end }}
{{- end }}

{{/* Where Redis comes from: existingSecret | url | chart (redis.enabled) | embedded (a redis-server in the pod). */}}
{{- define "genviral-notifier.redisMode" -}}
{{- if .Values.redis.existingSecret }}existingSecret
{{- else if .Values.redis.url }}url
{{- else if .Values.redis.enabled }}chart
{{- else }}embedded
{{- end }}
{{- end }}

{{/* Fails the render on combinations the schema cannot express. */}}
{{- define "genviral-notifier.validate" -}}
{{- $mode := include "genviral-notifier.redisMode" . }}
{{- if and .Values.redis.enabled (ne $mode "chart") }}
{{- fail "redis.enabled installs a Redis in the release; unset redis.url / redis.existingSecret, or set redis.enabled=false to use that Redis" }}
{{- end }}
{{- if and (eq $mode "embedded") (or .Values.roles.split (gt (int .Values.replicaCount) 1)) }}
{{- fail "replicaCount > 1 and roles.split need a shared Redis: set redis.url, redis.existingSecret or redis.enabled=true (without one, each pod runs its own embedded Redis)" }}
{{- end }}
{{- if and (not .Values.existingSecret) (not .Values.genviral.apiKey) }}
{{- fail "genviral.apiKey is required: set it, or set existingSecret to a Secret holding the keys named in existingSecretKeys" }}
{{- end }}
{{- end }}

{{/* The chart's Secret: holds what the values give in clear (API key, admin token, Redis URL). */}}
{{- define "genviral-notifier.secretName" -}}
{{- include "genviral-notifier.fullname" . }}
{{- end }}

{{- define "genviral-notifier.chartSecretNeeded" -}}
{{- if or (not .Values.existingSecret) (eq (include "genviral-notifier.redisMode" .) "url") }}true{{ end }}
{{- end }}

{{/* The admin token: the value given, else the one already stored in the release's Secret, else a new one. */}}
{{- define "genviral-notifier.adminToken" -}}
{{- if .Values.adminToken }}
{{- .Values.adminToken }}
{{- else }}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "genviral-notifier.secretName" .) }}
{{- if and $existing $existing.data (hasKey $existing.data "admin-token") }}
{{- index $existing.data "admin-token" | b64dec }}
{{- else }}
{{- randAlphaNum 48 }}
{{- end }}
{{- end }}
{{- end }}

{{/* Subscriptions as code: from the ConfigMap (values.subscriptions) or from an existing Secret. */}}
{{- define "genviral-notifier.subscriptionsMounted" -}}
{{- if or .Values.subscriptions .Values.subscriptionsExistingSecret }}true{{ end }}
{{- end }}

{{/* Pod template checksums: a change of settings, subscriptions or chart-held secrets rolls the pods. */}}
{{- define "genviral-notifier.checksums" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- if include "genviral-notifier.chartSecretNeeded" . }}
checksum/secret: {{ include "genviral-notifier.secretChecksumSource" . | sha256sum }}
{{- end }}
{{- end }}

{{/* What the Secret's checksum covers: the clear values, not a freshly generated token. */}}
{{- define "genviral-notifier.secretChecksumSource" -}}
{{ .Values.existingSecret }}|{{ .Values.genviral.apiKey }}|{{ .Values.adminToken }}|{{ .Values.redis.url }}
{{- end }}
