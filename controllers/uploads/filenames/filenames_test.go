package filenames

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
)

func TestANameALostAnswerTookMovesOnUnlessAPersonChoseIt(t *testing.T) {
	syncOwner := metav1.OwnerReference{APIVersion: upv1.GroupVersion.String(), Kind: "UserPackageSync", Name: "vip", UID: "u1", Controller: ptr.To(true)}
	otherOwner := metav1.OwnerReference{APIVersion: "apps/v1", Kind: "UserPackageSync", Name: "vip", UID: "u2", Controller: ptr.To(true)}
	for _, tt := range []struct {
		name     string
		filename string
		owner    *metav1.OwnerReference
		want     string
	}{
		{name: "a default name moves on to the next free one", want: "r003-2.csv"},
		{name: "an explicit name is used as it is: a person sets a new one", filename: "vip-abc.csv", want: "vip-abc.csv"},
		{name: "a sync child's name moves on: nobody is there to set one", filename: "vip-abc.csv", owner: &syncOwner, want: "vip-abc-2.csv"},
		{name: "a name set on an object another kind controls is a person's", filename: "vip-abc.csv", owner: &otherOwner, want: "vip-abc.csv"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u := &upv1.UserPackageUpload{
				Spec: upv1.UserPackageUploadSpec{
					Source: upv1.Source{S3: &upv1.S3Source{Key: "exports/r003.csv"}},
					File:   upv1.FileSpec{Filename: tt.filename},
				},
				Status: upv1.UserPackageUploadStatus{History: []upv1.AbandonedUpload{{Filename: "r003.csv"}, {Filename: "vip-abc.csv"}}},
			}
			if tt.owner != nil {
				u.OwnerReferences = []metav1.OwnerReference{*tt.owner}
			}
			if got := ForUpload(u); got != tt.want {
				t.Errorf("ForUpload = %q, want %q", got, tt.want)
			}
		})
	}
}
