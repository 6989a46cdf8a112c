{{/* The name of every object: the release's name, with -vectorheal unless it has it. */}}
{{- define "vectorheal.fullname" -}}
{{- if contains "vectorheal" .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-vectorheal" .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "vectorheal.labels" -}}
app.kubernetes.io/name: vectorheal
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "vectorheal.selector" -}}
app.kubernetes.io/name: vectorheal
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "vectorheal.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion -}}
{{- if eq $tag "latest" -}}
{{- fail "image.tag: latest would change what runs at every restart; give a release" -}}
{{- end -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}

{{- define "vectorheal.runbookConfigMap" -}}
{{- .Values.runbook.existingConfigMap | default (printf "%s-runbook" (include "vectorheal.fullname" .)) -}}
{{- end -}}

{{/* The pod of the Deployments and the StatefulSet; .component is exporter or replica, .shards
     the shard count of an exporter that is one of several shards (its StatefulSet's replicas). */}}
{{- define "vectorheal.pod" -}}
{{- $root := .root -}}
metadata:
  labels:
    {{- include "vectorheal.selector" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
  annotations:
    checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
spec:
  serviceAccountName: {{ include "vectorheal.fullname" $root }}
  automountServiceAccountToken: false
  # A repair interrupted by termination is finished or rolled back by the next process; the
  # grace period lets a clean shutdown record where it stopped.
  terminationGracePeriodSeconds: 60
  securityContext:
    runAsNonRoot: true
    runAsUser: 65532
    runAsGroup: 65532
    fsGroup: 65532
    seccompProfile: {type: RuntimeDefault}
  containers:
    - name: vectorheal
      image: {{ include "vectorheal.image" $root }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      {{- if gt (int (.shards | default 1)) 1 }}
      # The shard is the pod's ordinal (<name>-0, <name>-1, ...), one of the StatefulSet's replicas.
      args: ["serve", "--exporter.shard=auto", "--exporter.total-shards={{ .shards }}", "--exporter.shard-by={{ $root.Values.shardBy }}", "--config.file", "/etc/vectorheal/config/{{ .configKey }}"]
      {{- else }}
      args: ["serve", "--config.file", "/etc/vectorheal/config/{{ .configKey }}"]
      {{- end }}
      ports:
        - {name: http, containerPort: 9877, protocol: TCP}
      env:
        {{- range $name, $key := $root.Values.secretEnv }}
        - name: {{ $name }}
          valueFrom: {secretKeyRef: {name: {{ $root.Values.existingSecret }}, key: {{ $key }}}}
        {{- end }}
      livenessProbe:
        httpGet: {path: /-/healthy, port: http}
        periodSeconds: 10
        failureThreshold: 3
      readinessProbe:
        httpGet: {path: /-/ready, port: http}
        periodSeconds: 5
        failureThreshold: 2
      resources:
        {{- toYaml $root.Values.resources | nindent 8 }}
      securityContext:
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        capabilities: {drop: ["ALL"]}
      volumeMounts:
        - {name: config, mountPath: /etc/vectorheal/config, readOnly: true}
        - {name: runbook, mountPath: /etc/vectorheal/runbook, readOnly: true}
        - {name: secrets, mountPath: /etc/vectorheal/secrets, readOnly: true}
  volumes:
    - name: config
      configMap: {name: {{ include "vectorheal.fullname" $root }}-config}
    - name: runbook
      configMap: {name: {{ include "vectorheal.runbookConfigMap" $root }}}
    - name: secrets
      secret:
        secretName: {{ $root.Values.existingSecret }}
        items:
          - {key: {{ $root.Values.webhookTokenKey }}, path: webhook-token}
          - {key: {{ $root.Values.apiTokenKey }}, path: api-token}
          - {key: {{ $root.Values.apiReadTokenKey }}, path: api-read-token}
        defaultMode: 0440
{{- end -}}
