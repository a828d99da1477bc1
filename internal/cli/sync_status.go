package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/util/duration"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/internal/checkslot"
)

// printSyncStatus writes the one-screen status of a sync: what it follows,
// the revision it is in step with, its runs and its last events.
func printSyncStatus(w io.Writer, s *upv1.UserPackageSync, events []eventsv1.Event, now time.Time) error {
	printSyncSpec(w, s, now)
	printConditions(w, s.Status.Conditions, now)
	if last := s.Status.LastSyncedRevision; last != nil {
		fmt.Fprintf(w, "\nLast synced: %s (revision %s), %d members, %s, by %s, %s ago\n",
			last.Key, last.ID, last.Members, last.Digest, last.Child, age(last.At, now))
	}
	if len(s.Status.History) > 0 {
		printRuns(w, s.Status.History, now)
	}
	return printEvents(w, events, now)
}

func printSyncSpec(w io.Writer, s *upv1.UserPackageSync, now time.Time) {
	fmt.Fprintf(w, "UserPackageSync %s/%s\n", s.Namespace, s.Name)
	if ready := apimeta.FindStatusCondition(s.Status.Conditions, upv1.ConditionReady); ready != nil {
		fmt.Fprintf(w, "  Ready:       %s (%s): %s\n", ready.Status, ready.Reason, ready.Message)
	}
	if s.Spec.Suspend {
		fmt.Fprintln(w, "  Suspended:   yes (kubectl patch upsync "+s.Name+" --type merge -p '{\"spec\":{\"suspend\":false}}')")
	}
	fmt.Fprintf(w, "  Follows:     %s\n", syncSourceString(s.Spec.Source))
	fmt.Fprintf(w, "  Package:     %s, mode %s\n", s.Spec.UserPackageID, orDefault(string(s.Spec.Mode), string(upv1.SyncModeDelta)))
	if !s.Spec.Suspend {
		fmt.Fprintf(w, "  Checks:      %s\n", checksString(s, now))
	}
}

// checksString says when the operator checks the sync's source: every
// interval at the sync's own offset into it (from its UID), which anyone
// can compute, so status need not carry it.
func checksString(s *upv1.UserPackageSync, now time.Time) string {
	interval := s.Spec.CheckInterval()
	next := checkslot.Next(s.UID, interval, now)
	return fmt.Sprintf("every %s, at %s into each (next in %s, at %s); a requested reconcile checks at once",
		shortDuration(interval), shortDuration(checkslot.Offset(s.UID, interval).Truncate(time.Second)),
		duration.HumanDuration(next.Sub(now)), next.UTC().Format(time.RFC3339))
}

// syncSourceString names what a sync follows, never a URL's query.
func syncSourceString(s upv1.SyncSource) string {
	switch {
	case s.S3 != nil && s.S3.Prefix != "":
		return fmt.Sprintf("the newest object under s3://%s/%s (%s)", s.S3.Bucket, s.S3.Prefix, s.S3.Endpoint)
	case s.S3 != nil:
		return fmt.Sprintf("the versions of s3://%s/%s (%s)", s.S3.Bucket, s.S3.Key, s.S3.Endpoint)
	case s.HTTP != nil:
		u, _, _ := strings.Cut(s.HTTP.URL, "?")
		return u
	}
	return "<none>"
}

// printRuns writes the sync's runs, newest first.
func printRuns(w io.Writer, runs []upv1.SyncRun, now time.Time) {
	fmt.Fprintln(w, "\nRuns (newest first; LEFT: members WeChat Pay keeps although the export dropped them):")
	tw := statusTable(w, "  REVISION", "RESULT", "MEMBERS", "ADDED", "UNCHANGED", "LEFT", "INVALID", "CHILD", "AGE", "MESSAGE")
	for _, r := range runs {
		writeRow(tw, []string{"  " + r.Key, string(r.Result), fmt.Sprint(r.Members), fmt.Sprint(r.Added), fmt.Sprint(r.Unchanged),
			fmt.Sprint(r.Left), fmt.Sprint(r.InvalidLines), orDefault(r.Child, "-"), age(r.At, now), r.Message})
	}
	_ = tw.Flush()
}

// shortDuration writes d as a spec would: 1h, 1m, 1h30m, 37s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
