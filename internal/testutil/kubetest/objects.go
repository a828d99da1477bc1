package kubetest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// AdminKubeconfig writes into dir the kubeconfig of a new cluster-admin
// (system:masters) user called name, for kubectl, helm or a manager binary.
func (e *Env) AdminKubeconfig(dir, name string) (string, error) {
	user, err := e.env.AddUser(envtest.User{Name: name, Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return "", fmt.Errorf("add user %s: %w", name, err)
	}
	cfg, err := user.KubeConfig()
	if err != nil {
		return "", fmt.Errorf("kubeconfig of %s: %w", name, err)
	}
	path := filepath.Join(dir, "kubeconfig")
	return path, os.WriteFile(path, cfg, 0o600)
}

// DecodeObjects splits a stream of YAML (or JSON) documents into objects,
// leaving out empty documents.
func DecodeObjects(data []byte) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	d := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		var obj map[string]any
		err := d.Decode(&obj)
		switch {
		case errors.Is(err, io.EOF):
			return out, nil
		case err != nil:
			return nil, fmt.Errorf("decode objects: %w", err)
		case obj != nil:
			out = append(out, &unstructured.Unstructured{Object: obj})
		}
	}
}
