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
// image of the release's tarball: the kubelet reports the image ID
// containerd imported it under, the digest of the image's config.
func theImageRunIsTheReleases(t *testing.T) {
	want, err := imageID(first.imageTar())
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

// imageID is the config digest of the one image of an OCI layout tarball.
func imageID(file string) (string, error) {
	blobs, err := tarFiles(file)
	if err != nil {
		return "", err
	}
	var index struct {
		Manifests []struct{ Digest string } `json:"manifests"`
	}
	if err := json.Unmarshal(blobs["index.json"], &index); err != nil || len(index.Manifests) != 1 {
		return "", fmt.Errorf("%s: index.json lists no one manifest (%v)", file, err)
	}
	var manifest struct {
		Config struct{ Digest string } `json:"config"`
	}
	if err := json.Unmarshal(blobs[blobPath(index.Manifests[0].Digest)], &manifest); err != nil {
		return "", fmt.Errorf("%s: manifest %s: %w", file, index.Manifests[0].Digest, err)
	}
	return manifest.Config.Digest, nil
}

func blobPath(digest string) string { return "blobs/sha256/" + strings.TrimPrefix(digest, "sha256:") }

// tarFiles reads a tarball's small files (JSON) by name; layers are skipped.
func tarFiles(file string) (map[string][]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", file, err)
		}
		if h.Size < 64<<10 {
			if files[h.Name], err = io.ReadAll(tr); err != nil {
				return nil, err
			}
		}
	}
}
