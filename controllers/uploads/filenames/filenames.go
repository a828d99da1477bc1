// Package filenames names what an upload sends WeChat Pay: the requested
// filename, or for a file cut into several uploads, numbered ones; a
// default name an earlier upload of the object used gets a number, since
// WeChat Pay takes a filename once per brand.
package filenames

import (
	"fmt"
	"path"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/internal/uploadplan"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

// RequestedForChunk is the filename a chunk asks for, before the -2 rule:
// the requested filename for a file in one chunk, <stem>-001.csv and on
// for several.
func RequestedForChunk(u *upv1.UserPackageUpload, index int32) string {
	name := Requested(u)
	if len(u.Status.Uploads) <= 1 {
		return name
	}
	return chunkName(strings.TrimSuffix(name, ".csv"), index, len(u.Status.Uploads))
}

// chunkName is the filename of chunk index of count (uploadplan.ChunkName,
// which kubectl crowdpack preview shares).
func chunkName(stem string, index int32, count int) string {
	return uploadplan.ChunkName(stem, index, count)
}

func chunkSuffix(index int32, count int) string { return uploadplan.ChunkSuffix(index, count) }

// ForChunk is the filename a new upload of chunk index sends. A file
// in one chunk is named as it always was (ForUpload). Several chunks
// number their names; a default stem that an earlier upload's name used
// gets a number first: vip-001.csv, then vip-2-001.csv. The stem is judged
// by any of its numbered names, not only this chunk's: the history keeps
// only the last 10 names of an abandoned set.
func ForChunk(u *upv1.UserPackageUpload, index int32) string {
	count := len(u.Status.Uploads)
	if count <= 1 {
		return ForUpload(u)
	}
	base := strings.TrimSuffix(Requested(u), ".csv")
	if Explicit(u) {
		return chunkName(base, index, count)
	}
	used := usedFilenames(u)
	room := wechatpay.MaxFilenameLength - len(chunkSuffix(index, count))
	stem := freeStem(base, room, func(stem string) bool { return stemUsed(used, stem) })
	return stem + chunkSuffix(index, count)
}

// stemUsed reports whether a used filename is a numbered name of stem.
func stemUsed(used map[string]bool, stem string) bool {
	for name := range used {
		number, ok := strings.CutPrefix(name, stem+"-")
		number, csv := strings.CutSuffix(number, ".csv")
		if ok && csv && len(number) >= 3 && strings.Trim(number, "0123456789") == "" {
			return true
		}
	}
	return false
}

// usedFilenames are the filenames of earlier uploads of the object.
func usedFilenames(u *upv1.UserPackageUpload) map[string]bool {
	used := map[string]bool{}
	for _, h := range u.Status.History {
		used[h.Filename] = true
	}
	return used
}

// Requested is spec.file.filename or, by default, the base name of
// the source key or URL path (admission checks that one of them is valid).
func Requested(u *upv1.UserPackageUpload) string {
	if u.Spec.File.Filename != "" {
		return u.Spec.File.Filename
	}
	switch {
	case u.Spec.Source.S3 != nil:
		return path.Base(u.Spec.Source.S3.Key)
	case u.Spec.Source.HTTP != nil:
		p, _, _ := strings.Cut(u.Spec.Source.HTTP.URL, "?")
		p, _, _ = strings.Cut(p, "#")
		return path.Base(p)
	}
	return ""
}

// Explicit reports whether a person chose the filename: spec.file.filename
// set on an object no UserPackageSync controls. A sync names its children's
// files itself, so such a name moves on to the next free one, as a default
// name does, when a lost initiate answer took it: nobody is there to set a
// new one on a child.
func Explicit(u *upv1.UserPackageUpload) bool {
	if u.Spec.File.Filename == "" {
		return false
	}
	owner := metav1.GetControllerOf(u)
	return owner == nil || owner.Kind != "UserPackageSync" || !strings.HasPrefix(owner.APIVersion, upv1.GroupVersion.Group+"/")
}

// ForUpload is the filename a new upload sends. WeChat Pay refuses a
// filename it has seen, so a default name that an earlier upload of the
// object used gets a number: vip.csv, then vip-2.csv. An explicit filename
// is used as it is.
func ForUpload(u *upv1.UserPackageUpload) string {
	base := Requested(u)
	if Explicit(u) {
		return base
	}
	used := usedFilenames(u)
	stem := freeStem(strings.TrimSuffix(base, ".csv"), wechatpay.MaxFilenameLength-len(".csv"),
		func(stem string) bool { return used[stem+".csv"] })
	return stem + ".csv"
}

// freeStem is base, cut to room characters, or, when taken says an
// earlier upload used it, the first of base-2, base-3, … that is free
// (WeChat Pay takes a filename once per brand).
func freeStem(base string, room int, taken func(stem string) bool) string {
	stem := base[:min(len(base), room)]
	for n := 2; taken(stem); n++ {
		number := fmt.Sprintf("-%d", n)
		stem = base[:min(len(base), room-len(number))] + number
	}
	return stem
}
