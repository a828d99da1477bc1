//go:build e2enode

package node

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// theLogsAreJSONLinesWithoutSecrets reads the manager's logs as kubectl
// logs does (the API server asks the kubelet) after an upload and scrapes:
// every line is one JSON object with a level and a message, and none holds
// the brand's key, the storage secret or a bearer token.
func theLogsAreJSONLinesWithoutSecrets(t *testing.T) {
	ctx := context.Background()
	pods, err := managerPods(ctx)
	must(t, err)
	secrets := secretMaterial()
	for _, p := range pods {
		data, err := clientset.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
		must(t, err)
		if restarts(p) > 0 { // kubectl logs --previous: the run before the restart too
			previous, err := clientset.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{Previous: true}).DoRaw(ctx)
			must(t, err)
			data = append(previous, data...)
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) < 3 {
			t.Fatalf("pod %s logged %d lines, want the start-up and the upload's", p.Name, len(lines))
		}
		for i, line := range lines {
			var entry map[string]any
			if err := json.Unmarshal([]byte(line), &entry); err != nil {
				t.Errorf("pod %s line %d is not a JSON object: %v: %.200s", p.Name, i+1, err, line)
				continue
			}
			if entry["level"] == nil || entry["msg"] == nil {
				t.Errorf("pod %s line %d has no level or msg: %.200s", p.Name, i+1, line)
			}
		}
		for what, s := range secrets {
			if strings.Contains(string(data), s) {
				t.Errorf("pod %s's logs hold %s", p.Name, what)
			}
		}
	}
}

// secretMaterial is what must never be logged, by what it is.
func secretMaterial() map[string]string {
	m := map[string]string{"MinIO's secret key": world.minioKey}
	for k, v := range world.identity.SecretData() {
		if strings.HasSuffix(k, ".pem") {
			// A line from inside the PEM body: any of the key's bytes in a log.
			body := strings.Split(strings.TrimSpace(string(v)), "\n")
			m["the brand Secret's "+k] = body[len(body)/2]
		}
	}
	m["a PRIVATE KEY block"] = "PRIVATE KEY"
	for i, tok := range tokensSeen {
		m["bearer token "+string(rune('1'+i))] = tok
	}
	return m
}
