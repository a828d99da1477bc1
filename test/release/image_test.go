package release

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"crypto/x509"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const imageFile = "crowdpack-image-" + version + "-linux-amd64.tar"

// ociImage is the release's image as read back from its layout, every
// digest checked on the way.
type ociImage struct {
	ref    string            // the name index.json gives it
	config imageConfig       // the run settings
	files  map[string][]byte // path → content of every regular file in the layers
	dirs   []string
	mode   map[string]int64
	owner  map[string]int
}

type imageConfig struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Config       struct {
		User       string            `json:"User"`
		Entrypoint []string          `json:"Entrypoint"`
		WorkingDir string            `json:"WorkingDir"`
		Labels     map[string]string `json:"Labels"`
	} `json:"config"`
	RootFS struct {
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations"`
}

func readImage(t *testing.T) *ociImage {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dist, imageFile))
	must(t, err)
	layout := untar(t, raw)
	blob := func(d descriptor) []byte {
		t.Helper()
		data, ok := layout["blobs/sha256/"+strings.TrimPrefix(d.Digest, "sha256:")]
		if !ok {
			t.Fatalf("the layout has no blob %s", d.Digest)
		}
		if digestOf(data) != d.Digest || int64(len(data)) != d.Size {
			t.Fatalf("blob %s has another digest or size than its descriptor", d.Digest)
		}
		return data
	}
	var index struct{ Manifests []descriptor }
	must(t, json.Unmarshal(layout["index.json"], &index))
	if len(index.Manifests) != 1 {
		t.Fatalf("index.json lists %d manifests, want 1", len(index.Manifests))
	}
	var manifest struct {
		Config descriptor
		Layers []descriptor
	}
	must(t, json.Unmarshal(blob(index.Manifests[0]), &manifest))
	img := &ociImage{ref: index.Manifests[0].Annotations["io.containerd.image.name"],
		files: map[string][]byte{}, mode: map[string]int64{}, owner: map[string]int{}}
	must(t, json.Unmarshal(blob(manifest.Config), &img.config))
	var diffIDs []string
	for _, l := range manifest.Layers {
		gz, err := gzip.NewReader(bytes.NewReader(blob(l)))
		must(t, err)
		layer, err := io.ReadAll(gz)
		must(t, err)
		diffIDs = append(diffIDs, digestOf(layer))
		img.addLayer(t, layer)
	}
	if d := cmp.Diff(img.config.RootFS.DiffIDs, diffIDs); d != "" {
		t.Fatalf("the config's diff_ids are not the layers' (-config +layers):\n%s", d)
	}
	return img
}

func (img *ociImage) addLayer(t *testing.T, layer []byte) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(layer))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		must(t, err)
		name := "/" + strings.TrimSuffix(h.Name, "/")
		img.mode[name], img.owner[name] = h.Mode, h.Uid
		if h.Typeflag == tar.TypeDir {
			img.dirs = append(img.dirs, name)
			continue
		}
		data, err := io.ReadAll(tr)
		must(t, err)
		img.files[name] = data
	}
}

func untar(t *testing.T, raw []byte) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(raw))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		must(t, err)
		data, err := io.ReadAll(tr)
		must(t, err)
		files[h.Name] = data
	}
}

func digestOf(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// runStage is what the Dockerfile's last stage says about the image, its
// ARGs substituted with the release's.
type runStage struct {
	user, workdir string
	entrypoint    []string
	labels        map[string]string
}

func dockerfileRunStage(t *testing.T) runStage {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	must(t, err)
	text := strings.ReplaceAll(string(raw), "\\\n", " ")
	stages := regexp.MustCompile(`(?m)^FROM `).Split(text, -1)
	last := strings.ReplaceAll(stages[len(stages)-1], "${VERSION}", version)
	var s runStage
	s.labels = map[string]string{}
	for _, line := range strings.Split(last, "\n") {
		instruction, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch instruction {
		case "USER":
			s.user = rest
		case "WORKDIR":
			s.workdir = rest
		case "ENTRYPOINT":
			must(t, json.Unmarshal([]byte(rest), &s.entrypoint))
		case "LABEL":
			for _, m := range regexp.MustCompile(`([\w.-]+)="([^"]*)"`).FindAllStringSubmatch(rest, -1) {
				s.labels[m[1]] = m[2]
			}
		}
	}
	if s.user == "" || len(s.entrypoint) == 0 || len(s.labels) == 0 {
		t.Fatalf("found no USER, ENTRYPOINT or LABEL in the Dockerfile's run stage: %+v", s)
	}
	return s
}

// The image make release writes and the Dockerfile describe the same run:
// user, entrypoint, working directory and labels.
func TestTheReleaseImageRunsAsTheDockerfileSays(t *testing.T) {
	img, want := readImage(t), dockerfileRunStage(t)
	c := img.config.Config
	got := runStage{user: c.User, workdir: c.WorkingDir, entrypoint: c.Entrypoint, labels: c.Labels}
	if d := cmp.Diff(want, got, cmp.AllowUnexported(runStage{})); d != "" {
		t.Errorf("the image's run settings differ from the Dockerfile's (-Dockerfile +image):\n%s", d)
	}
	if img.ref != imageRepo+":"+version {
		t.Errorf("the image is named %q, want %s:%s", img.ref, imageRepo, version)
	}
	if img.config.OS != "linux" || img.config.Architecture != "amd64" {
		t.Errorf("the image is for %s/%s, want linux/amd64", img.config.OS, img.config.Architecture)
	}
}

// What goes in: a static manager that says the release's version, the CA
// roots where Go looks for them, the nonroot user, and nothing to run a
// shell with.
func TestTheReleaseImageHoldsAStaticManagerCARootsAndNoShell(t *testing.T) {
	img := readImage(t)
	var names []string
	for name := range img.files {
		names = append(names, name)
	}
	slices.Sort(names)
	want := []string{"/etc/group", "/etc/passwd", "/etc/ssl/certs/ca-certificates.crt", "/manager"}
	if d := cmp.Diff(want, names); d != "" {
		t.Errorf("the image's files (-want +got):\n%s", d)
	}
	if img.mode["/manager"]&0o111 == 0 {
		t.Errorf("/manager is not executable (mode %o)", img.mode["/manager"])
	}
	if !strings.Contains(string(img.files["/etc/passwd"]), "nonroot:x:65532:65532:") {
		t.Errorf("/etc/passwd has no nonroot user 65532:\n%s", img.files["/etc/passwd"])
	}
	if !x509.NewCertPool().AppendCertsFromPEM(img.files["/etc/ssl/certs/ca-certificates.crt"]) {
		t.Error("/etc/ssl/certs/ca-certificates.crt holds no certificate")
	}
	manager := filepath.Join(t.TempDir(), "manager")
	must(t, os.WriteFile(manager, img.files["/manager"], 0o755))
	bin, err := elf.Open(manager)
	must(t, err)
	defer bin.Close()
	if slices.ContainsFunc(bin.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_INTERP }) {
		t.Error("/manager is dynamically linked: the image has no libc")
	}
	out, err := exec.Command(manager, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("/manager --version: %v\n%s", err, out)
	}
	if !strings.HasPrefix(string(out), "manager "+version+" ") {
		t.Errorf("/manager --version = %q, want the release %s", out, version)
	}
}
