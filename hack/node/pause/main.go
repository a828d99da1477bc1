// Command pause writes the sandbox ("pause") image of make e2e-node's node as
// an OCI image layout in a tar file, for ctr images import: one layer holding
// a static Go program (./pause) that waits for SIGTERM. No registry is
// reachable here, so containerd's sandbox_image must be an image made locally.
//
//	go run ./hack/node/pause --version 3.9-crowdpack.1 --out pause-image.tar
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"
)

// Repository is the pause image's name; hack/node sets containerd's
// sandbox_image to Repository:version.
const Repository = "crowdpack.local/pause"

func main() {
	version := flag.String("version", "", "the image's tag")
	out := flag.String("out", "", "the tar file to write")
	flag.Parse()
	if *version == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "usage: pause --version V --out FILE")
		os.Exit(2)
	}
	if err := write(*version, *out); err != nil {
		fmt.Fprintln(os.Stderr, "pause:", err)
		os.Exit(1)
	}
}

func write(version, out string) error {
	binary, err := buildPause()
	if err != nil {
		return err
	}
	image, err := imageLayout(Repository+":"+version, binary)
	if err != nil {
		return err
	}
	return os.WriteFile(out, image, 0o644)
}

// buildPause compiles ./pause statically, next to this file.
func buildPause() ([]byte, error) {
	dir, err := os.MkdirTemp("", "pause")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "pause")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "./hack/node/pause/pause")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build the pause program (run from the repository's root): %w\n%s", err, out)
	}
	return os.ReadFile(bin)
}

// imageLayout is an OCI image layout (index.json, blobs) of one layer
// holding /pause, its entrypoint.
func imageLayout(ref string, binary []byte) ([]byte, error) {
	raw, err := tarOf(map[string][]byte{"pause": binary}, 0o755)
	if err != nil {
		return nil, err
	}
	gz, err := gzipped(raw)
	if err != nil {
		return nil, err
	}
	config := marshal(map[string]any{
		"architecture": "amd64", "os": "linux", "created": time.Unix(0, 0).UTC().Format(time.RFC3339),
		"config": map[string]any{"Entrypoint": []string{"/pause"}, "User": "65535:65535"},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{digest(raw)}},
	})
	manifest := marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": descriptor("application/vnd.oci.image.config.v1+json", config),
		"layers": []any{descriptor("application/vnd.oci.image.layer.v1.tar+gzip", gz)},
	})
	m := descriptor("application/vnd.oci.image.manifest.v1+json", manifest)
	m["platform"] = map[string]string{"os": "linux", "architecture": "amd64"}
	m["annotations"] = map[string]string{"io.containerd.image.name": ref}
	index := marshal(map[string]any{"schemaVersion": 2, "manifests": []any{m}})
	files := map[string][]byte{"oci-layout": []byte(`{"imageLayoutVersion":"1.0.0"}`), "index.json": index}
	for _, b := range [][]byte{config, manifest, gz} {
		files["blobs/sha256/"+digest(b)[len("sha256:"):]] = b
	}
	return tarOf(files, 0o644)
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func descriptor(mediaType string, b []byte) map[string]any {
	return map[string]any{"mediaType": mediaType, "digest": digest(b), "size": len(b)}
}

func marshal(v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err) // maps, slices and strings only: cannot fail
	}
	return data
}

func gzipped(raw []byte) ([]byte, error) {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(raw); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// tarOf writes files (directories implied by the blobs/sha256/ prefix are
// created by the readers) with fixed times, in sorted order for stable bytes.
func tarOf(files map[string][]byte, mode int64) ([]byte, error) {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		h := &tar.Header{Name: n, Mode: mode, Size: int64(len(files[n])), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("tar %s: %w", n, err)
		}
		if _, err := tw.Write(files[n]); err != nil {
			return nil, fmt.Errorf("tar %s: %w", n, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
