package cli

import (
	"bytes"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
)

func TestBar(t *testing.T) {
	cases := []struct {
		name        string
		done, total int64
		want        string
	}{
		{"no plan yet is an empty bar", 0, 0, "[----------]"},
		{"half the parts is half a bar", 5, 10, "[#####-----]"},
		{"a part short of the end is not a full bar", 9, 10, "[#########-]"},
		{"every part is a full bar", 25, 25, "[##########]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := bar(tc.done, tc.total, 10); got != tc.want {
				t.Errorf("bar(%d, %d) = %s, want %s", tc.done, tc.total, got, tc.want)
			}
		})
	}
}

func TestKindFor(t *testing.T) {
	for word, want := range map[string]string{
		"uploads": "UserPackageUpload", "upu": "UserPackageUpload", "UserPackageUploads.wechatpay.crowdpack.io": "UserPackageUpload",
		"syncs": "UserPackageSync", "upsync": "UserPackageSync", "brands": "WeChatPayBrand", "wxbrand": "WeChatPayBrand",
	} {
		k, err := kindFor(word)
		if err != nil || k.Kind != want {
			t.Errorf("kindFor(%q) = %s, %v; want %s", word, k.Kind, err, want)
		}
	}
	if _, err := kindFor("pods"); err == nil {
		t.Error("kindFor(pods) succeeded")
	}
}

func TestBrandSecretNamespace(t *testing.T) {
	deploy := func(args []string, env ...corev1.EnvVar) *appsv1.Deployment {
		d := &appsv1.Deployment{}
		d.Namespace = "crowdpack-system"
		d.Spec.Template.Spec.Containers = []corev1.Container{{Name: "manager", Args: args, Env: env}}
		return d
	}
	podNamespace := corev1.EnvVar{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}
	cases := []struct {
		name string
		d    *appsv1.Deployment
		want string
	}{
		{"the manager's own namespace, through POD_NAMESPACE", deploy(nil, podNamespace), "crowdpack-system"},
		{"the flag wins over POD_NAMESPACE", deploy([]string{"--brand-secret-namespace=platform"}, podNamespace), "platform"},
		{"the flag with its value apart", deploy([]string{"--brand-secret-namespace", "platform"}), "platform"},
		{"none without either", deploy(nil), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := brandSecretNamespace(tc.d); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// Without a terminal, progress prints one plain line per change and no
// control characters; on a terminal it redraws one line.
func TestProgress(t *testing.T) {
	u := &upv1.UserPackageUpload{}
	u.Status.Summary = &upv1.UploadSummary{Parts: 10, PartsDone: 4, UploadsProgress: "0/1"}
	var plain bytes.Buffer
	p := newProgress(&plain, false)
	p.show(u, status.InProgressStatus, "uploading", true)
	p.show(u, status.InProgressStatus, "uploading", true)
	u.Status.Summary.PartsDone = 10
	p.show(u, status.CurrentStatus, "done", true)
	p.finish("ready")
	if got, want := plain.String(), "InProgress parts 4/10, uploads 0/1: uploading\nCurrent parts 10/10, uploads 0/1: done\nready\n"; got != want {
		t.Errorf("plain progress %q, want %q", got, want)
	}
	var tty bytes.Buffer
	p = newProgress(&tty, true)
	p.show(u, status.CurrentStatus, "done", true)
	p.finish("ready")
	if got := tty.String(); !strings.HasPrefix(got, "\r\033[K[##############################] Current parts 10/10") || !strings.HasSuffix(got, "\nready\n") {
		t.Errorf("terminal progress %q", got)
	}
}
