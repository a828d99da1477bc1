//go:build e2enode

package node

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
)

// theImageRunIsTheReleases checks that the manager's container runs the
// image whose manifest the release's tarball holds (the kubelet reports
// the digest containerd imported it under).
func theImageRunIsTheReleases(t *testing.T) {
	want, err := manifestDigest(first.imageTar())
	must(t, err)
	pods, err := managerPods(context.Background())
	must(t, err)
	for _, p := range pods {
		for _, c := range p.Status.ContainerStatuses {
			if !strings.HasSuffix(c.ImageID, want) {
				t.Errorf("pod %s runs image %s, want the release tarball's %s", p.Name, c.ImageID, want)
			}
		}
	}
}

// manifestDigest reads the digest of the one manifest of an OCI layout tarball.
func manifestDigest(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return "", fmt.Errorf("%s holds no index.json", file)
		}
		if err != nil {
			return "", err
		}
		if h.Name != "index.json" {
			continue
		}
		var index struct {
			Manifests []struct{ Digest string } `json:"manifests"`
		}
		if err := json.NewDecoder(tr).Decode(&index); err != nil {
			return "", fmt.Errorf("%s index.json: %w", file, err)
		}
		if len(index.Manifests) != 1 {
			return "", fmt.Errorf("%s index.json lists %d manifests, want 1", file, len(index.Manifests))
		}
		return index.Manifests[0].Digest, nil
	}
}
