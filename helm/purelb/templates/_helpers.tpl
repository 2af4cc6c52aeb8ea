{{/* Names and labels shared by every template. */}}

{{- define "purelb.name" -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "purelb.allocator.name" -}}
{{- printf "%s-allocator" (include "purelb.name" .) -}}
{{- end -}}

{{- define "purelb.lbnodeagent.name" -}}
{{- printf "%s-lbnodeagent" (include "purelb.name" .) -}}
{{- end -}}

{{- define "purelb.bird.name" -}}
{{- printf "%s-bird" (include "purelb.name" .) -}}
{{- end -}}

{{- define "purelb.allocator.serviceAccount" -}}
{{- .Values.allocator.serviceAccount.name | default (include "purelb.allocator.name" .) -}}
{{- end -}}

{{- define "purelb.lbnodeagent.serviceAccount" -}}
{{- .Values.lbnodeagent.serviceAccount.name | default (include "purelb.lbnodeagent.name" .) -}}
{{- end -}}

{{- define "purelb.labels" -}}
app.kubernetes.io/name: purelb
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component: (dict "ctx" $ "component" "allocator"). */}}
{{- define "purelb.selectorLabels" -}}
app.kubernetes.io/name: purelb
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "purelb.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* Restricted container settings shared by every container. */}}
{{- define "purelb.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
seccompProfile:
  type: RuntimeDefault
{{- end -}}
