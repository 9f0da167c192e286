{{/*
Shared names and labels. The contract (issue 4) fixes several names, so they are not derived
from the release name: one kccl installation per cluster (the webhook configuration and the
ClusterRole are cluster-scoped).
*/}}

{{- define "kccl.labels" -}}
app.kubernetes.io/name: kccl
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "kccl.operatorSelector" -}}
app.kubernetes.io/name: kccl
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "kccl.operatorImage" -}}
{{ .Values.image.operator.repository }}:{{ .Values.image.operator.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "kccl.sidecarImage" -}}
{{ .Values.image.sidecar.repository }}:{{ .Values.image.sidecar.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* The webhook Service's DNS name: the name the serving certificate must carry. */}}
{{- define "kccl.webhookHost" -}}
kccl-webhook.{{ .Release.Namespace }}.svc
{{- end -}}

{{/* Checks of values that the schema cannot express (they involve two keys). */}}
{{- define "kccl.validate" -}}
{{- if and .Values.example.enabled (not (has .Values.example.namespace .Values.workloadNamespaces)) -}}
{{- fail (printf "example.namespace %q is not in workloadNamespaces %v: the example's pods need the kccl-sidecar ServiceAccount there; add it to workloadNamespaces" .Values.example.namespace .Values.workloadNamespaces) -}}
{{- end -}}
{{- if has .Release.Namespace .Values.workloadNamespaces -}}
{{- fail (printf "workloadNamespaces contains the release namespace %q: the webhook never injects there, so pods there would get no sidecar; install the chart into its own namespace (helm install kccl ./helm/kccl -n kccl-system --create-namespace) or remove it from workloadNamespaces" .Release.Namespace) -}}
{{- end -}}
{{- if and .Values.operator.watchNamespace .Values.example.enabled (ne .Values.operator.watchNamespace .Values.example.namespace) -}}
{{- fail (printf "operator.watchNamespace %q does not include example.namespace %q: the example group would never form; set both to the same namespace or watchNamespace to \"\"" .Values.operator.watchNamespace .Values.example.namespace) -}}
{{- end -}}
{{- end -}}
