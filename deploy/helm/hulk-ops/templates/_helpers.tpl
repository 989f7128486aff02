{{- define "hulk-ops.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "hulk-ops.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "hulk-ops.labels" -}}
app.kubernetes.io/name: {{ include "hulk-ops.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "hulk-ops.selector" -}}
app.kubernetes.io/name: {{ include "hulk-ops.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "hulk-ops.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "hulk-ops.collectorServiceAccount" -}}
{{- default (printf "%s-collector" (include "hulk-ops.fullname" .)) .Values.serviceAccount.collector -}}
{{- end -}}

{{- define "hulk-ops.actionsServiceAccount" -}}
{{- default (printf "%s-actions" (include "hulk-ops.fullname" .)) .Values.serviceAccount.actions -}}
{{- end -}}

{{- define "hulk-ops.secretName" -}}
{{- default (printf "%s-env" (include "hulk-ops.fullname" .)) .Values.existingSecret -}}
{{- end -}}

{{/* The config file: values.config, with collector.sharding switched on when replicas > 1. */}}
{{- define "hulk-ops.config" -}}
{{- $config := deepCopy .Values.config -}}
{{- $collector := get $config "collector" | default dict -}}
{{- $sharding := get $collector "sharding" | default dict -}}
{{- $sharding = merge $sharding (deepCopy .Values.collector.sharding) (dict "enabled" (gt (int .Values.collector.replicas) 1)) -}}
{{- $_ := set $collector "sharding" $sharding -}}
{{- $_ := set $config "collector" $collector -}}
{{- toYaml $config -}}
{{- end -}}

{{/* The Secret holding the dashboard's secrets.toml for OIDC ("" when none is configured). */}}
{{- define "hulk-ops.oidcSecretName" -}}
{{- if .Values.dashboard.oidc.existingSecret -}}
{{- .Values.dashboard.oidc.existingSecret -}}
{{- else if .Values.dashboard.oidc.secretsToml -}}
{{- printf "%s-oidc" (include "hulk-ops.fullname" .) -}}
{{- end -}}
{{- end -}}
