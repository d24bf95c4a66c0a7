{{/* Names: "<release>" when the release name already says rds-csi, else "<release>-rds-csi". */}}
{{- define "rds-csi.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "rds-csi.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "rds-csi.labels" -}}
{{ include "rds-csi.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The driver image: tag defaults to the chart's appVersion. */}}
{{- define "rds-csi.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "rds-csi.sshSecretName" -}}
{{- default (printf "%s-ssh" (include "rds-csi.fullname" .)) .Values.rds.sshSecret.name -}}
{{- end -}}

{{- define "rds-csi.restSecretName" -}}
{{- default (printf "%s-rest" (include "rds-csi.fullname" .)) .Values.rds.rest.secret.name -}}
{{- end -}}

{{/* The control plane, checked: ssh or rest. */}}
{{- define "rds-csi.controlPlane" -}}
{{- if not (has .Values.rds.controlPlane (list "ssh" "rest")) -}}
{{- fail (printf "rds.controlPlane must be ssh or rest, not %q" .Values.rds.controlPlane) -}}
{{- end -}}
{{- .Values.rds.controlPlane -}}
{{- end -}}

{{/* Where kubelet finds this driver's socket on the host. */}}
{{- define "rds-csi.pluginDir" -}}
{{- printf "%s/plugins/%s" (trimSuffix "/" .Values.kubeletDir) .Values.driverName -}}
{{- end -}}

{{/* The securityContext every unprivileged container gets. */}}
{{- define "rds-csi.restrictedContainer" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end -}}
