package soak

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
)

// tenants are the namespaces the workload is spread over: each has its
// own read slots, brand Secret and bucket.
var tenants = []string{"soak-a", "soak-b", "soak-c", "soak-d"}

// packages are the crowd packages uploads expand; a sync expands one of
// its own.
var packages = []string{"01000100010000000001", "01000100010000000002", "01000100010000000003",
	"01000100010000000004", "01000100010000000005", "01000100010000000006"}

// The kinds of upload in the workload, with their share in percent.
var uploadKinds = []struct {
	name   string
	weight int
}{
	{"md5", 35},           // MD5 lines, one or two parts
	{"md5-multipart", 20}, // MD5 lines, 3 to 12 parts
	{"raw", 20},           // raw numbers, hashed in the cluster
	{"split", 13},         // raw numbers hashed and cut into uploads of 1,000 lines
	{sourceDrip, 6},       // MD5 lines over HTTP, dripping
	{sourceReset, 6},      // MD5 lines over HTTP, resetting connections
}

// workload makes numbers no other object uses, so that every upload's
// bytes, and so its digest, are its own.
type workload struct {
	w   *world
	rng *rand.Rand

	mu   sync.Mutex
	next int
	// raw are the raw numbers written in any source: none may show up in
	// a log, an event or a status.
	raw map[string]bool
	// uploads are the expected uploaded bytes of each upload the soak
	// created, by namespace/name.
	uploads map[string][]byte
	// revisions are the sync exports written, by namespace/bucket key.
	revisions map[string][]byte
	syncs     []*syncState
}

// syncState is what the workload wrote for one sync.
type syncState struct {
	ns, name, pkg string
	members       []string // the newest revision's numbers
	revisions     int
}

func newWorkload(w *world, seed uint64) *workload {
	return &workload{w: w, rng: rand.New(rand.NewPCG(seed, seed+2)), raw: map[string]bool{},
		uploads: map[string][]byte{}, revisions: map[string][]byte{}}
}

// numbers takes n numbers no object has used yet.
func (wl *workload) numbers(n int) []string {
	wl.mu.Lock()
	defer wl.mu.Unlock()
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("1%010d", 3_800_000_000+wl.next)
		wl.next++
	}
	return out
}

// rawFile writes numbers as a CRM export does, in mixed forms, and
// remembers them as raw numbers.
func (wl *workload) rawFile(numbers []string) []byte {
	wl.mu.Lock()
	defer wl.mu.Unlock()
	var b bytes.Buffer
	for i, n := range numbers {
		wl.raw[n] = true
		if i%3 == 0 {
			b.WriteString("+86 ")
		}
		b.WriteString(n + "\n")
	}
	return b.Bytes()
}

// md5Lines are the lines WeChat Pay receives for numbers.
func md5Lines(numbers []string) []byte {
	var b bytes.Buffer
	for _, n := range numbers {
		sum := md5.Sum([]byte(n))
		b.WriteString(hex.EncodeToString(sum[:]) + "\n")
	}
	return b.Bytes()
}

func (wl *workload) intn(lo, hi int) int {
	wl.mu.Lock()
	defer wl.mu.Unlock()
	return lo + wl.rng.IntN(hi-lo+1)
}

func (wl *workload) kind() string {
	roll := wl.intn(0, 99)
	for _, k := range uploadKinds {
		if roll < k.weight {
			return k.name
		}
		roll -= k.weight
	}
	return uploadKinds[0].name
}

// createUpload writes the i-th upload's file and creates its object.
func (wl *workload) createUpload(i int) error {
	ns, name, kind := tenants[i%len(tenants)], fmt.Sprintf("up-%03d", i), wl.kind()
	u := wl.object(ns, name)
	var uploaded []byte
	switch kind {
	case "md5", "md5-multipart", sourceDrip, sourceReset:
		n := wl.intn(50, 1500)
		if kind != "md5" {
			n = wl.intn(3000, 12000)
		}
		uploaded = md5Lines(wl.numbers(n))
		if kind == sourceDrip || kind == sourceReset {
			u.Spec.Source = upv1.Source{HTTP: &upv1.HTTPSource{URL: wl.w.sources.put("/"+ns+"/"+name+".csv", kind, uploaded), Insecure: true}}
			break
		}
		if err := wl.put(ns, name+".csv", uploaded); err != nil {
			return err
		}
	case "raw", "split":
		numbers := wl.numbers(wl.intn(1000, 6000))
		if err := wl.put(ns, name+".csv", wl.rawFile(numbers)); err != nil {
			return err
		}
		uploaded = md5Lines(numbers)
		u.Spec.File.Hashing = upv1.HashingMD5
		if kind == "split" {
			u.Spec.File.MaxLinesPerUpload = ptr.To[int32](1000)
		}
	}
	if wl.intn(0, 1) == 0 {
		u.Spec.UserPackageID = packages[wl.intn(0, len(packages)-1)]
	}
	u.Labels = map[string]string{"soak/kind": kind}
	wl.mu.Lock()
	wl.uploads[ns+"/"+name] = uploaded
	wl.mu.Unlock()
	return wl.w.kube.Client.Create(wl.w.ctx, u)
}

func (wl *workload) put(bucket, key string, data []byte) error {
	_, err := wl.w.storage.PutBytes(wl.w.ctx, bucket, key, data)
	return err
}

// object is an upload of key in its namespace's bucket.
func (wl *workload) object(ns, name string) *upv1.UserPackageUpload {
	return &upv1.UserPackageUpload{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: upv1.UserPackageUploadSpec{
			Source: upv1.Source{S3: wl.s3(ns, name+".csv")},
			File: upv1.FileSpec{
				PackageType: upv1.PackageTypeExposure,
				DataType:    upv1.DataTypePhone,
				Description: "customers who bought twice in 90 days",
			},
			CredentialsRef: &upv1.SecretReference{Name: "wechatpay-brand"},
		},
	}
}

func (wl *workload) s3(bucket, key string) *upv1.S3Source {
	return &upv1.S3Source{Endpoint: wl.w.storage.Endpoint, Bucket: bucket, Key: key, Insecure: true,
		SecretRef: &upv1.SecretReference{Name: "storage"}}
}

// createSync creates the i-th sync with its first revision: a Delta sync
// of the dated raw exports under its own prefix, expanding its own package.
func (wl *workload) createSync(i int) error {
	s := &syncState{ns: tenants[i%len(tenants)], name: fmt.Sprintf("sync-%02d", i), pkg: fmt.Sprintf("020001000100000000%02d", i)}
	s.members = wl.numbers(wl.intn(1000, 3000))
	if err := wl.writeRevision(s); err != nil {
		return err
	}
	wl.mu.Lock()
	wl.syncs = append(wl.syncs, s)
	wl.mu.Unlock()
	s3 := wl.s3(s.ns, "")
	s3.Key = ""
	sync := &upv1.UserPackageSync{
		ObjectMeta: metav1.ObjectMeta{Name: s.name, Namespace: s.ns},
		Spec: upv1.UserPackageSyncSpec{
			Interval: &metav1.Duration{Duration: time.Minute},
			Source:   upv1.SyncSource{S3: &upv1.SyncS3Source{S3Source: *s3, Prefix: s.prefix()}},
			File: upv1.FileSpec{PackageType: upv1.PackageTypeExposure, DataType: upv1.DataTypePhone,
				Description: "members of the daily CRM segment", Hashing: upv1.HashingMD5},
			CredentialsRef: &upv1.SecretReference{Name: "wechatpay-brand"},
			UserPackageID:  s.pkg,
			HistoryLimit:   100,
		},
	}
	return wl.w.kube.Client.Create(wl.w.ctx, sync)
}

func (s *syncState) prefix() string { return "syncs/" + s.name + "/" }

// newRevision writes the sync's next export: the last one less its first
// tenth (within the shrink guard) and with new members.
// Only the goroutine that writes revisions touches s.
func (wl *workload) newRevision(s *syncState) error {
	kept := s.members[len(s.members)/10:]
	s.members = append(append([]string(nil), kept...), wl.numbers(wl.intn(100, 500))...)
	return wl.writeRevision(s)
}

func (wl *workload) writeRevision(s *syncState) error {
	s.revisions++
	key := fmt.Sprintf("%sr%03d.csv", s.prefix(), s.revisions)
	data := wl.rawFile(s.members)
	wl.mu.Lock()
	wl.revisions[s.ns+"/"+key] = data
	wl.mu.Unlock()
	return wl.put(s.ns, key, data)
}

// newestKey is the key of the sync's last revision.
func (s *syncState) newestKey() string { return fmt.Sprintf("%sr%03d.csv", s.prefix(), s.revisions) }

// childExpected is what a sync's child must have uploaded: the MD5 lines of
// its revision's members that its base (excludeMembersOf) lacks, in order.
func (wl *workload) childExpected(u *upv1.UserPackageUpload) ([]byte, error) {
	wl.mu.Lock()
	defer wl.mu.Unlock()
	file, ok := wl.revisions[u.Namespace+"/"+u.Spec.Source.S3.Key]
	if !ok {
		return nil, fmt.Errorf("child %s/%s reads %s, which the soak never wrote", u.Namespace, u.Name, u.Spec.Source.S3.Key)
	}
	base := map[string]bool{}
	if ex := u.Spec.File.ExcludeMembersOf; ex != nil {
		data, ok := wl.revisions[u.Namespace+"/"+ex.S3.Key]
		if !ok {
			return nil, fmt.Errorf("child %s/%s excludes %s, which the soak never wrote", u.Namespace, u.Name, ex.S3.Key)
		}
		for _, n := range rawNumbers(data) {
			base[n] = true
		}
	}
	var added []string
	for _, n := range rawNumbers(file) {
		if !base[n] {
			added = append(added, n)
		}
	}
	return md5Lines(added), nil
}

// rawNumbers reads the numbers of a raw export back.
func rawNumbers(file []byte) []string {
	var out []string
	for line := range strings.Lines(string(file)) {
		out = append(out, strings.TrimPrefix(strings.TrimSuffix(line, "\n"), "+86 "))
	}
	return out
}
