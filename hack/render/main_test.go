package main

import (
	"strings"
	"testing"
)

func TestSplitImage(t *testing.T) {
	cases := []struct {
		name, image, repo, tag string
		wantErr                bool
	}{
		{"a repository and tag split at the colon", "registry.example.com/crowdpack:v0.2.0", "registry.example.com/crowdpack", "v0.2.0", false},
		{"a registry port is not a tag", "registry.example.com:5000/crowdpack:v0.2.0", "registry.example.com:5000/crowdpack", "v0.2.0", false},
		{"an image without a tag is refused", "registry.example.com:5000/crowdpack", "", "", true},
		{"an empty tag is refused", "crowdpack:", "", "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			repo, tag, err := splitImage(tc.image)
			if (err != nil) != tc.wantErr || repo != tc.repo || tag != tc.tag {
				t.Errorf("splitImage(%q) = %q, %q, %v; want %q, %q, error %v", tc.image, repo, tag, err, tc.repo, tc.tag, tc.wantErr)
			}
		})
	}
}

// The overlay must pin what it is asked to, and nothing when asked nothing.
func TestRenderPinsTheImageAndVersion(t *testing.T) {
	out, err := render("../../config/default", "registry.example.com/crowdpack:v9.9.9", "v9.9.9", "exclude")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"image: registry.example.com/crowdpack:v9.9.9", "app.kubernetes.io/version: v9.9.9"} {
		if !contains(out, want) {
			t.Errorf("the render has no %q", want)
		}
	}
	if contains(out, "kind: CustomResourceDefinition") {
		t.Error("--crds exclude rendered the CRD")
	}
}

func contains(b []byte, s string) bool { return strings.Contains(string(b), s) }
