{{/* The chart name, or nameOverride. */}}
{{- define "crowdpack.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Object name prefix: fullnameOverride, or the release name (plus the chart name unless the release name contains it). */}}
{{- define "crowdpack.fullname" -}}
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

{{/* The recommended labels every object carries (the CRD included). */}}
{{- define "crowdpack.baseLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "crowdpack.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: crowdpack
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels of the manager's objects: the recommended ones and the selector labels. */}}
{{- define "crowdpack.labels" -}}
{{ include "crowdpack.baseLabels" . }}
control-plane: controller-manager
{{- end }}

{{/* Labels that select the manager's pods (as config/manager does). */}}
{{- define "crowdpack.selectorLabels" -}}
app.kubernetes.io/name: {{ include "crowdpack.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
control-plane: controller-manager
{{- end }}

{{/* The manager's ServiceAccount: serviceAccount.name, or <fullname>-controller-manager. */}}
{{- define "crowdpack.serviceAccountName" -}}
{{ .Values.serviceAccount.name | default (printf "%s-controller-manager" (include "crowdpack.fullname" .)) }}
{{- end }}

{{- define "crowdpack.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}
