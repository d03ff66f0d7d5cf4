{{/* The five services: their Python module, HTTP port, the env var of that port, and
whether they use Kafka (and so need the topics). Facts of the code, not settings. */}}
{{- define "campaigns.catalogue" -}}
campaign-api: {module: campaign_api, port: 8080, portEnv: GATEWAY_PORT, kafka: true}
segment-svc: {module: segment_svc, port: 8081, portEnv: HTTP_PORT, kafka: true}
flow-engine: {module: flow_engine, port: 8082, portEnv: HTTP_PORT, kafka: false}
scheduler: {module: scheduler, port: 8083, portEnv: HTTP_PORT, kafka: true}
mailer: {module: mailer, port: 8084, portEnv: HTTP_PORT, kafka: true}
{{- end -}}

{{- define "campaigns.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The name of one service's objects: (list $ "mailer") */}}
{{- define "campaigns.component" -}}
{{- printf "%s-%s" (include "campaigns.fullname" (index . 0)) (index . 1) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "campaigns.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: campaigns
{{- end -}}

{{/* The selector of one service's pods: (list $ "mailer") */}}
{{- define "campaigns.selector" -}}
app.kubernetes.io/name: {{ (index . 0).Chart.Name }}
app.kubernetes.io/instance: {{ (index . 0).Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "campaigns.secretName" -}}
{{- .Values.secrets.existingSecret | default (printf "%s-secrets" (include "campaigns.fullname" .)) -}}
{{- end -}}

{{- define "campaigns.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* Settings every container reads: the ConfigMap, then the Secret. */}}
{{- define "campaigns.envFrom" -}}
- configMapRef:
    name: {{ include "campaigns.fullname" . }}-config
- secretRef:
    name: {{ include "campaigns.secretName" . }}
{{- end -}}
