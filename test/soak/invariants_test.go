package soak

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/internal/sandbox"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

// An invariant checked over the whole run, with how many things it
// looked at and the violations it found.
type invariant struct {
	name       string
	checked    int
	violations []string
}

func (inv *invariant) check(ok bool, format string, args ...any) {
	inv.checked++
	if !ok {
		inv.violations = append(inv.violations, fmt.Sprintf(format, args...))
	}
}

// The invariants, in the order of the report.
const (
	invReady      = "every upload and sync Ready after the faults stop"
	invBytes      = "merged bytes equal the expected bytes (source, hashed, split or delta)"
	invMergedOnce = "each session merged, merge called at most 1 + merge unknown outcomes"
	invExpand     = "each upload expanded once into its package, expand called at most 1 + expand unknown outcomes"
	invInitiate   = "initiates per upload at most 1 + initiate unknown outcomes; orphan sessions bounded the same way"
	invMembers    = "each crowd package holds exactly the union of what its objects sent"
	invSecrets    = "no secret and no raw number in any log, event or status"
	invRSS        = "manager RSS within the bound throughout"
	invGoroutines = "no goroutine leak in the managers that ran to the end"
)

// verdict is the run's invariants.
type verdict struct {
	byName map[string]*invariant
	order  []string
}

func newVerdict() *verdict {
	v := &verdict{byName: map[string]*invariant{}}
	for _, name := range []string{invReady, invBytes, invMergedOnce, invExpand, invInitiate, invMembers, invSecrets, invRSS, invGoroutines} {
		v.byName[name] = &invariant{name: name}
		v.order = append(v.order, name)
	}
	return v
}

func (v *verdict) of(name string) *invariant { return v.byName[name] }

// table is the report: one row per invariant with its counts.
func (v *verdict) table() string {
	var b strings.Builder
	b.WriteString("| invariant | checked | violations |\n|---|---|---|\n")
	for _, name := range v.order {
		inv := v.byName[name]
		fmt.Fprintf(&b, "| %s | %d | %d |\n", name, inv.checked, len(inv.violations))
	}
	return b.String()
}

// failures lists the broken invariants by name, each with its first
// violations.
func (v *verdict) failures() []string {
	var out []string
	for _, name := range v.order {
		inv := v.byName[name]
		if len(inv.violations) == 0 {
			continue
		}
		shown := inv.violations[:min(len(inv.violations), 5)]
		out = append(out, fmt.Sprintf("BROKEN: %s (%d violations):\n  %s", name, len(inv.violations), strings.Join(shown, "\n  ")))
	}
	return out
}

// calls counts the sandbox's record by what the invariants compare.
type calls struct {
	// merges and expands are calls that reached processing (a lost answer
	// included; an injected error not), by upload id and package/upload id.
	merges, expands map[string]int
	// expanded are successful expands, by package/upload id.
	expanded map[string]int
	// sessionsByDigest are the initiated sessions, by uploaded digest.
	sessionsByDigest map[string][]sandbox.Session
}

func countCalls(sb *sandbox.Server) calls {
	c := calls{merges: map[string]int{}, expands: map[string]int{}, expanded: map[string]int{}, sessionsByDigest: map[string][]sandbox.Session{}}
	for _, r := range sb.Records() {
		processed := r.Fault == "" || r.Fault == sandbox.FaultLostResponse
		switch {
		case r.Endpoint == sandbox.EndpointMerge && processed && r.Status != 499:
			c.merges[r.UploadID]++
		case r.Endpoint == sandbox.EndpointExpand && processed && r.Status != 499:
			c.expands[r.UserPackageID+"/"+r.UploadID]++
			if r.Succeeded() {
				c.expanded[r.UserPackageID+"/"+r.UploadID]++
			}
		}
	}
	for _, s := range sb.Sessions() {
		c.sessionsByDigest[s.Digest] = append(c.sessionsByDigest[s.Digest], s)
	}
	return c
}

// checkUpload checks one upload (created by the soak or a sync's child)
// against what it should have sent and the sandbox's record.
func checkUpload(v *verdict, w *world, c calls, u *upv1.UserPackageUpload, want []byte, known map[string]bool) {
	name := u.Namespace + "/" + u.Name
	var merged bytes.Buffer
	for _, up := range u.Status.Uploads {
		known[up.ID] = true
		file, ok := w.sandbox.MergedFile(up.ID)
		v.of(invMergedOnce).check(ok, "%s upload %d (%s) was never merged", name, up.Index, up.ID)
		merged.Write(file)
		v.of(invMergedOnce).check(c.merges[up.ID] <= 1+int(up.MergeUnknownOutcomes),
			"%s upload %d: merge called %d times with %d unknown outcomes recorded", name, up.Index, c.merges[up.ID], up.MergeUnknownOutcomes)
		if u.Spec.UserPackageID != "" {
			key := u.Spec.UserPackageID + "/" + up.ID
			v.of(invExpand).check(c.expanded[key] == 1, "%s upload %d expanded %d times into %s", name, up.Index, c.expanded[key], u.Spec.UserPackageID)
			v.of(invExpand).check(c.expands[key] <= 1+int(up.ExpandUnknownOutcomes),
				"%s upload %d: expand called %d times with %d unknown outcomes recorded", name, up.Index, c.expands[key], up.ExpandUnknownOutcomes)
		}
		sessions := len(c.sessionsByDigest[strings.TrimPrefix(up.Digest, "sha256:")])
		v.of(invInitiate).check(sessions <= 1+int(up.UnknownOutcomes),
			"%s upload %d: %d sessions initiated with %d unknown outcomes recorded", name, up.Index, sessions, up.UnknownOutcomes)
	}
	v.of(invBytes).check(bytes.Equal(merged.Bytes(), want), "%s: merged %d bytes, want %d", name, merged.Len(), len(want))
}

// checkOrphans bounds the sessions no object knows of: each must be of a
// chunk some object uploaded, and all of them together at most the
// initiate unknown outcomes the objects recorded.
func checkOrphans(v *verdict, w *world, uploads []upv1.UserPackageUpload, known map[string]bool) {
	digests, unknown := map[string]bool{}, 0
	for _, u := range uploads {
		for _, up := range u.Status.Uploads {
			digests[strings.TrimPrefix(up.Digest, "sha256:")] = true
			unknown += int(up.UnknownOutcomes)
		}
	}
	orphans := 0
	for _, s := range w.sandbox.Sessions() {
		if known[s.ID] {
			continue
		}
		orphans++
		v.of(invInitiate).check(digests[s.Digest], "session %s (%s) is of bytes no object uploaded", s.ID, s.Filename)
		v.of(invInitiate).check(!s.Merged, "session %s (%s) was merged, and no object knows of it", s.ID, s.Filename)
	}
	v.of(invInitiate).check(orphans <= unknown, "%d orphan sessions, more than the %d initiate unknown outcomes recorded", orphans, unknown)
}

// checkMembers compares each package's members with the union of what its
// objects should have sent.
func checkMembers(v *verdict, w *world, sent map[string][]byte) {
	for pkg, lines := range sent {
		want := slices.Compact(slices.Sorted(strings.SplitSeq(strings.TrimSuffix(string(lines), "\n"), "\n")))
		if len(lines) == 0 {
			want = nil
		}
		got := w.sandbox.PackageMembers(pkg)
		v.of(invMembers).check(slices.Equal(got, want), "package %s holds %d members, want %d", pkg, len(got), len(want))
	}
}

// rawNumberRule finds 11-digit numbers standing alone.
var rawNumberRule = regexp.MustCompile(`(?:^|\D)(1\d{10})(?:\D|$)`)

// checkLeaks looks for secret material and raw numbers in what the
// managers logged, the events and the objects' status.
func checkLeaks(v *verdict, w *world, raw map[string]bool, texts map[string][]byte) {
	secrets := append([]string{w.storage.SecretKey}, secretMarkers(w.identity.SecretData()[wechatpay.SecretKeyPrivateKey])...)
	logs, _ := filepath.Glob(filepath.Join(w.logDir, "*.log"))
	for _, file := range logs {
		data, err := os.ReadFile(file)
		must(w.t, err)
		texts["log "+filepath.Base(file)] = data
	}
	for where, text := range texts {
		for _, s := range secrets {
			v.of(invSecrets).check(!bytes.Contains(text, []byte(s)), "%s holds secret material", where)
		}
		leaked := 0
		for _, m := range rawNumberRule.FindAllSubmatch(text, -1) {
			if raw[string(m[1])] {
				leaked++
			}
		}
		v.of(invSecrets).check(leaked == 0, "%s holds %d raw numbers", where, leaked)
	}
}

// secretMarkers are pieces of a Secret's value that must never be seen:
// its longest line (a line of a PEM key's body), and the start of the
// whole value in base64.
func secretMarkers(value []byte) []string {
	longest := ""
	for line := range strings.Lines(string(value)) {
		if line = strings.TrimSpace(line); len(line) > len(longest) {
			longest = line
		}
	}
	return []string{longest, base64.StdEncoding.EncodeToString(value)[:40]}
}

// eventTexts are the events of the tenants, as JSON.
func eventTexts(w *world) map[string][]byte {
	out := map[string][]byte{}
	for _, ns := range tenants {
		var events corev1.EventList
		must(w.t, w.kube.Client.List(w.ctx, &events, inNamespace(ns)))
		data, err := json.Marshal(events.Items)
		must(w.t, err)
		out["events of "+ns] = data
	}
	return out
}
