// Command render builds a folder under config/ with kustomize (the library
// built into kubectl) and prints it as one YAML stream, optionally with the
// manager image and the version label pinned, without changing the tree:
//
//	go run ./hack/render [--image REPO:TAG] [--version V] [--crds include|exclude|only] config/default
//
// The pins go into a throwaway overlay of the folder, as kustomize's
// images: and labels: fields; make deploy and make release use it, make
// undeploy with --crds exclude (to delete all but the CRDs) and make release
// with --crds only (crds.yaml).
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// managerImage is the image name the manager's container starts from in
// config/manager/manager.yaml; config/manager's images: entry renames it.
const managerImage = "crowdpack"

func main() {
	image := flag.String("image", "", "manager image as REPOSITORY:TAG (default: as config/ says)")
	version := flag.String("version", "", "value of the app.kubernetes.io/version label (default: as config/ says)")
	crds := flag.String("crds", "include", "CustomResourceDefinitions: include, exclude or only")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: go run ./hack/render [--image REPO:TAG] [--version V] [--crds include|exclude|only] DIR")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	if *crds != "include" && *crds != "exclude" && *crds != "only" {
		flag.Usage()
		os.Exit(2)
	}
	out, err := render(flag.Arg(0), *image, *version, *crds)
	if err != nil {
		fmt.Fprintln(os.Stderr, "render:", err)
		os.Exit(1)
	}
	os.Stdout.Write(out)
}

// render is dir's kustomize output, through an overlay that pins image and
// version when they are set.
func render(dir, image, version string, crds string) ([]byte, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if image == "" && version == "" {
		return build(abs, crds)
	}
	overlay, err := os.MkdirTemp("", "crowdpack-render-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(overlay)
	// kustomize takes no absolute paths: point at the base relative to the overlay.
	rel, err := filepath.Rel(overlay, abs)
	if err != nil {
		return nil, err
	}
	k, err := overlayKustomization(rel, abs, image, version)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), k, 0o600); err != nil {
		return nil, err
	}
	return build(overlay, crds)
}

// overlayKustomization is a kustomization of the base at rel (abs from
// here) that pins image and version where set.
func overlayKustomization(rel, abs, image, version string) ([]byte, error) {
	k := map[string]any{
		"apiVersion": "kustomize.config.k8s.io/v1beta1",
		"kind":       "Kustomization",
		"resources":  []string{rel},
	}
	if image != "" {
		name, tag, err := splitImage(image)
		if err != nil {
			return nil, err
		}
		// The base has already renamed managerImage; find what it calls it now.
		current, err := currentImageName(abs)
		if err != nil {
			return nil, err
		}
		k["images"] = []map[string]string{{"name": current, "newName": name, "newTag": tag}}
	}
	if version != "" {
		k["labels"] = []map[string]any{{
			"pairs":            map[string]string{"app.kubernetes.io/version": version},
			"includeSelectors": false,
			"includeTemplates": true,
		}}
	}
	return yaml.Marshal(k)
}

// splitImage splits REPOSITORY:TAG; the tag is what follows the last colon
// unless that colon is part of a registry host:port.
func splitImage(image string) (name, tag string, err error) {
	i := strings.LastIndex(image, ":")
	if i < 0 || strings.Contains(image[i+1:], "/") || i == len(image)-1 {
		return "", "", fmt.Errorf("--image %q has no tag: give REPOSITORY:TAG", image)
	}
	return image[:i], image[i+1:], nil
}

// currentImageName is the manager container's image name, without tag, as
// base renders it.
func currentImageName(base string) (string, error) {
	m, err := kustomize(base)
	if err != nil {
		return "", err
	}
	for _, r := range m.Resources() {
		if r.GetKind() != "Deployment" {
			continue
		}
		containers, err := r.GetSlice("spec.template.spec.containers")
		if err != nil {
			return "", err
		}
		for _, c := range containers {
			c, _ := c.(map[string]any)
			if c["name"] == "manager" {
				img, _ := c["image"].(string)
				name, _, err := splitImage(img)
				return name, err
			}
		}
	}
	return "", errors.New(base + " renders no Deployment with a manager container")
}

func kustomize(dir string) (resmap.ResMap, error) {
	// The order kubectl kustomize prints: Namespaces and CRDs before what
	// lives in them, so one kubectl apply -f of the output works.
	opts := krusty.MakeDefaultOptions()
	opts.Reorder = krusty.ReorderOptionLegacy
	m, err := krusty.MakeKustomizer(opts).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize %s: %w", dir, err)
	}
	return m, nil
}

func build(dir string, crds string) ([]byte, error) {
	m, err := kustomize(dir)
	if err != nil {
		return nil, err
	}
	for _, r := range m.Resources() {
		isCRD := r.GetKind() == "CustomResourceDefinition"
		if (crds == "exclude" && isCRD) || (crds == "only" && !isCRD) {
			if err := m.Remove(r.CurId()); err != nil {
				return nil, err
			}
		}
	}
	out, err := m.AsYaml()
	if err != nil {
		return nil, err
	}
	// One document per object, each opened by ---, as kubectl kustomize prints.
	return append([]byte("---\n"), bytes.TrimSpace(out)...), nil
}
