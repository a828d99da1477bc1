// Command image writes the manager's container image as an OCI image
// layout in a tar file, with no container engine and no registry:
//
//	go run ./hack/image --manager bin/manager --version v0.2.0 \
//	  --repository registry.example.com/crowdpack --out crowdpack-image.tar
//
// The image holds what the Dockerfile's run stage holds: the static manager
// at /manager, CA roots, the unprivileged user nonroot (65532) and nothing
// else (no shell); it runs as 65532:65532 with /manager as its entrypoint.
// The same inputs give the same bytes (fixed times, sorted entries), so the
// image's digest is the release's. `ctr images import` and `docker load`
// both read it: it carries an OCI index.json and Docker's manifest.json.
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
	"path"
	"time"
)

// Media types of the OCI image spec.
const (
	mediaIndex    = "application/vnd.oci.image.index.v1+json"
	mediaManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaConfig   = "application/vnd.oci.image.config.v1+json"
	mediaLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
)

// epoch is every file's time: a build at another moment gives the same bytes.
var epoch = time.Unix(0, 0).UTC()

// nonroot is distroless's unprivileged user, which the Dockerfile runs as.
const nonroot = "65532"

func main() {
	var o options
	flag.StringVar(&o.manager, "manager", "", "the static manager binary")
	flag.StringVar(&o.caBundle, "ca-bundle", "/etc/ssl/certs/ca-certificates.crt", "the CA roots the image trusts")
	flag.StringVar(&o.version, "version", "", "the release version, the image's tag")
	flag.StringVar(&o.repository, "repository", "", "the image repository, without tag")
	flag.StringVar(&o.arch, "arch", "amd64", "the manager binary's GOARCH")
	out := flag.String("out", "", "the tar file to write")
	flag.Parse()
	if o.manager == "" || o.version == "" || o.repository == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "usage: image --manager FILE --version V --repository REPO --out FILE [--ca-bundle FILE] [--arch A]")
		os.Exit(2)
	}
	if err := write(o, *out); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

type options struct {
	manager, caBundle, version, repository, arch string
}

func write(o options, out string) error {
	manager, err := os.ReadFile(o.manager)
	if err != nil {
		return fmt.Errorf("read the manager: %w", err)
	}
	roots, err := os.ReadFile(o.caBundle)
	if err != nil {
		return fmt.Errorf("read the CA roots: %w", err)
	}
	data, err := build(o, manager, roots)
	if err != nil {
		return err
	}
	return os.WriteFile(out, data, 0o644)
}

// build returns the image layout as a tar file: the base layer (users, CA
// roots, /tmp), the manager's layer, the config, the manifest and the index.
func build(o options, manager, roots []byte) ([]byte, error) {
	base, err := layer(baseFiles(roots))
	if err != nil {
		return nil, err
	}
	app, err := layer([]file{{name: "manager", mode: 0o755, data: manager}})
	if err != nil {
		return nil, err
	}
	layers := []blob{base.gz, app.gz}
	config := marshal(imageConfig(o, []string{base.diffID, app.diffID}))
	manifest := marshal(map[string]any{
		"schemaVersion": 2, "mediaType": mediaManifest,
		"config": descriptorOf(mediaConfig, config),
		"layers": []map[string]any{descriptorOf(mediaLayer, base.gz), descriptorOf(mediaLayer, app.gz)},
	})
	ref := o.repository + ":" + o.version
	m := descriptorOf(mediaManifest, manifest)
	m["platform"] = map[string]string{"os": "linux", "architecture": o.arch}
	m["annotations"] = map[string]string{
		"io.containerd.image.name":          ref,
		"org.opencontainers.image.ref.name": o.version,
	}
	index := marshal(map[string]any{"schemaVersion": 2, "mediaType": mediaIndex, "manifests": []any{m}})
	dockerManifest := marshal([]map[string]any{{
		"Config": blobPath(config), "RepoTags": []string{ref},
		"Layers": []string{blobPath(layers[0]), blobPath(layers[1])},
	}})
	files := []file{
		{name: "oci-layout", mode: 0o644, data: []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{name: "index.json", mode: 0o644, data: index},
		{name: "manifest.json", mode: 0o644, data: dockerManifest},
	}
	for _, b := range []blob{config, manifest, layers[0], layers[1]} {
		files = append(files, file{name: blobPath(b), mode: 0o644, data: b})
	}
	return tarOf(files)
}

// baseFiles is what the image holds besides the manager: distroless's
// users and groups, the CA roots at the path Go reads them from, and /tmp.
func baseFiles(roots []byte) []file {
	return []file{
		{name: "etc/", mode: 0o755, dir: true},
		{name: "etc/group", mode: 0o644, data: []byte("root:x:0:\nnonroot:x:" + nonroot + ":\n")},
		{name: "etc/passwd", mode: 0o644, data: []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:" + nonroot + ":" + nonroot + ":nonroot:/home/nonroot:/sbin/nologin\n")},
		{name: "etc/ssl/", mode: 0o755, dir: true},
		{name: "etc/ssl/certs/", mode: 0o755, dir: true},
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: roots},
		{name: "home/", mode: 0o755, dir: true},
		{name: "home/nonroot/", mode: 0o700, dir: true, owner: 65532},
		{name: "tmp/", mode: 0o1777, dir: true},
	}
}

// imageConfig is the run stage of the Dockerfile as an OCI config.
func imageConfig(o options, diffIDs []string) map[string]any {
	return map[string]any{
		"created":      epoch.Format(time.RFC3339),
		"architecture": o.arch,
		"os":           "linux",
		"config": map[string]any{
			"User":       nonroot + ":" + nonroot,
			"Entrypoint": []string{"/manager"},
			"WorkingDir": "/",
			"Env":        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"},
			"Labels": map[string]string{
				"org.opencontainers.image.title":   "crowdpack",
				"org.opencontainers.image.version": o.version,
				"org.opencontainers.image.source":  "https://github.com/crowdpack/crowdpack",
			},
		},
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs},
	}
}

type file struct {
	name  string
	mode  int64
	data  []byte
	dir   bool
	owner int
}

type blob []byte

func (b blob) digest() string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func blobPath(b blob) string { return path.Join("blobs", "sha256", b.digest()[len("sha256:"):]) }

func descriptorOf(mediaType string, b blob) map[string]any {
	return map[string]any{"mediaType": mediaType, "digest": b.digest(), "size": len(b)}
}

// marshal encodes v; maps come out with sorted keys, so the bytes are stable.
func marshal(v any) blob {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err) // only maps, slices and strings: cannot fail
	}
	return data
}

// built is a layer: its gzipped tar, and the digest of the tar itself,
// which the config lists.
type built struct {
	gz     blob
	diffID string
}

func layer(files []file) (built, error) {
	raw, err := tarOf(files)
	if err != nil {
		return built{}, err
	}
	var gz bytes.Buffer
	w, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if err != nil {
		return built{}, err
	}
	if _, err := w.Write(raw); err != nil {
		return built{}, err
	}
	if err := w.Close(); err != nil {
		return built{}, err
	}
	return built{gz: gz.Bytes(), diffID: blob(raw).digest()}, nil
}

// tarOf writes files in order, every time the epoch, owned by root unless
// they say otherwise.
func tarOf(files []file) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: epoch, Format: tar.FormatUSTAR,
			Typeflag: tar.TypeReg, Uid: f.owner, Gid: f.owner}
		if f.dir {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("tar %s: %w", f.name, err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, fmt.Errorf("tar %s: %w", f.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
