package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	eventsv1 "k8s.io/api/events/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
)

// eventsShown is how many of an object's last events status prints.
const eventsShown = 10

func newStatusCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "status [upload/|sync/]NAME",
		Short: "Show one upload or sync on one screen",
		Long: `status shows one UserPackageUpload on one screen: its kstatus and conditions,
the file read and its line checks (invalid line numbers, never their content),
each upload of the set with its parts bar, merge and expand state and lost
answers (unknown outcomes), the abandoned uploads and the object's last events.
A sync (sync/NAME) shows its history: the members each revision added and those
who left.`,
		Example: `  kubectl crowdpack status vip-2026-11 -n marketing
  kubectl crowdpack status sync/vip-daily -n marketing`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, name := uploadKind, args[0]
			if kindWord, rest, ok := strings.Cut(args[0], "/"); ok {
				var err error
				if k, err = kindFor(kindWord); err != nil {
					return err
				}
				name = rest
			}
			c, err := o.connect()
			if err != nil {
				return err
			}
			if err := c.requireServed(k); err != nil {
				return err
			}
			return showStatus(cmd.Context(), c, k, name, o.streams.Out)
		},
	}
}

// showStatus reads the object of kind k and writes its one-screen status.
func showStatus(ctx context.Context, c *clients, k kind, name string, w io.Writer) error {
	switch k.Kind {
	case uploadKind.Kind:
		return showOne(ctx, c, name, &upv1.UserPackageUpload{}, w, printUploadStatus)
	case syncKind.Kind:
		return showOne(ctx, c, name, &upv1.UserPackageSync{}, w, printSyncStatus)
	}
	return fmt.Errorf("status of a %s is not supported by this plugin release", k.Kind)
}

// showOne reads obj by name and writes it, with its last events, by print.
func showOne[T client.Object](ctx context.Context, c *clients, name string, obj T, w io.Writer,
	print func(io.Writer, T, []eventsv1.Event, time.Time) error) error {
	if err := c.client.Get(ctx, client.ObjectKey{Namespace: c.namespace, Name: name}, obj); err != nil {
		return err
	}
	events, err := lastEvents(ctx, c, obj)
	if err != nil {
		return err
	}
	return print(w, obj, events, time.Now())
}

// lastEvents are the object's newest events, oldest first. A user who may
// not list events gets the status without them.
func lastEvents(ctx context.Context, c *clients, obj client.Object) ([]eventsv1.Event, error) {
	var list eventsv1.EventList
	if err := c.client.List(ctx, &list, client.InNamespace(obj.GetNamespace())); err != nil {
		return nil, nil //nolint:nilerr // events are a courtesy
	}
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.UID == obj.GetUID() || (e.Regarding.UID == "" && e.Regarding.Name == obj.GetName()) {
			out = append(out, e)
		}
	}
	slices.SortStableFunc(out, func(a, b eventsv1.Event) int { return eventTime(a).Compare(eventTime(b)) })
	if len(out) > eventsShown {
		out = out[len(out)-eventsShown:]
	}
	return out, nil
}

func eventTime(e eventsv1.Event) time.Time {
	switch {
	case e.Series != nil:
		return e.Series.LastObservedTime.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.DeprecatedLastTimestamp.IsZero():
		return e.DeprecatedLastTimestamp.Time
	}
	return e.CreationTimestamp.Time
}

// printUploadStatus writes the one-screen status of u.
func printUploadStatus(w io.Writer, u *upv1.UserPackageUpload, events []eventsv1.Event, now time.Time) error {
	printUploadSpec(w, u)
	printConditions(w, u.Status.Conditions, now)
	if s := u.Status.Source; s != nil {
		printFileRead(w, s)
	}
	if c := u.Status.Content; c != nil {
		printContent(w, c)
	}
	if len(u.Status.Uploads) > 0 {
		printUploads(w, u.Status.Uploads, u.Status.Summary)
	}
	if len(u.Status.History) > 0 {
		printAbandoned(w, u.Status.History, now)
	}
	return printEvents(w, events, now)
}

// printUploadSpec writes the status line and what the spec asks for.
func printUploadSpec(w io.Writer, u *upv1.UserPackageUpload) {
	st, msg := kstatusOf(u)
	fmt.Fprintf(w, "UserPackageUpload %s/%s\n", u.Namespace, u.Name)
	fmt.Fprintf(w, "  Status:      %s", st)
	if msg != "" {
		fmt.Fprintf(w, ": %s", msg)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  Generation:  %d (observed %d)\n", u.Generation, u.Status.ObservedGeneration)
	if u.Spec.Suspend {
		fmt.Fprintln(w, "  Suspended:   yes (kubectl crowdpack resume "+u.Name+")")
	}
	f := u.Spec.File
	fmt.Fprintf(w, "  Source:      %s\n", sourceString(u.Spec.Source))
	fmt.Fprintf(w, "  File:        %s %s, hashing %s, max lines per upload %s, header row skipped: %s\n",
		f.PackageType, f.DataType, orDefault(string(f.Hashing), "None"), maxLinesString(u), yesNo(f.SkipHeaderRow))
	if u.Spec.UserPackageID != "" {
		fmt.Fprintf(w, "  Package:     %s\n", u.Spec.UserPackageID)
	}
	if u.Status.LastHandledReconcileAt != "" {
		fmt.Fprintf(w, "  Last reconcile request handled: %s\n", u.Status.LastHandledReconcileAt)
	}
}

// statusTable starts one of the screen's tables with its header; the
// caller writes the rows and flushes.
func statusTable(w io.Writer, header ...string) *tabwriter.Writer {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	writeRow(tw, header)
	return tw
}

func printConditions(w io.Writer, conditions []metav1.Condition, now time.Time) {
	fmt.Fprintln(w, "\nConditions:")
	tw := statusTable(w, "  TYPE", "STATUS", "REASON", "AGE", "MESSAGE")
	for _, c := range conditions {
		writeRow(tw, []string{"  " + c.Type, string(c.Status), c.Reason, age(c.LastTransitionTime, now), c.Message})
	}
	_ = tw.Flush()
}

// printFileRead writes what identifies the file last read.
func printFileRead(w io.Writer, s *upv1.SourceStatus) {
	fmt.Fprintf(w, "\nFile read: %d bytes, %s", s.Size, s.Digest)
	if s.ETag != "" {
		fmt.Fprintf(w, ", etag %s", s.ETag)
	}
	if s.VersionID != "" {
		fmt.Fprintf(w, ", version %s", s.VersionID)
	}
	fmt.Fprintln(w)
}

// printUploads writes each upload of the set with its parts bar.
func printUploads(w io.Writer, uploads []upv1.UploadStatus, summary *upv1.UploadSummary) {
	fmt.Fprintf(w, "\nUploads")
	if summary != nil {
		fmt.Fprintf(w, " (%s finished, parts %s)", summary.UploadsProgress, summary.PartsProgress)
	}
	fmt.Fprintln(w, ":")
	tw := statusTable(w, "  #", "FILENAME", "LINES", "PARTS", "", "MERGED", "EXPANDED", "UNKNOWN OUTCOMES")
	for i := range uploads {
		up := &uploads[i]
		writeRow(tw, []string{
			fmt.Sprintf("  %d", up.Index), up.Filename, fmt.Sprintf("%d-%d (%d)", up.FirstLine, up.LastLine, up.Lines),
			bar(up.PartsDone, up.PartCount, 20), partsString(up), mergeState(up), expandState(up), unknownOutcomes(up),
		})
	}
	_ = tw.Flush()
}

func printAbandoned(w io.Writer, history []upv1.AbandonedUpload, now time.Time) {
	fmt.Fprintln(w, "\nAbandoned uploads (newest first):")
	tw := statusTable(w, "  FILENAME", "ID", "GENERATION", "AGE")
	for _, h := range history {
		writeRow(tw, []string{"  " + h.Filename, orDefault(h.ID, "(initiate answer lost)"), fmt.Sprint(h.Generation), age(h.At, now)})
	}
	_ = tw.Flush()
}

// printEvents writes the last events; its error, the last table's flush,
// is printUploadStatus's.
func printEvents(w io.Writer, events []eventsv1.Event, now time.Time) error {
	fmt.Fprintln(w, "\nEvents:")
	if len(events) == 0 {
		fmt.Fprintln(w, "  <none>")
		return nil
	}
	tw := statusTable(w, "  AGE", "TYPE", "REASON", "MESSAGE")
	for _, e := range events {
		writeRow(tw, []string{"  " + age(metav1.Time{Time: eventTime(e)}, now), e.Type, e.Reason, e.Note})
	}
	return tw.Flush()
}

func printContent(w io.Writer, c *upv1.ContentStatus) {
	fmt.Fprintf(w, "Lines: %d, invalid %d", c.Lines, c.InvalidLines)
	if len(c.InvalidLineNumbers) > 0 {
		fmt.Fprintf(w, " (first at line %s)", joinInts(c.InvalidLineNumbers))
	}
	fmt.Fprintf(w, ", empty %d", c.EmptyLines)
	var notes []string
	if c.HeaderRow {
		notes = append(notes, "line 1 looks like a header row")
	}
	if c.CRLF {
		notes = append(notes, "CRLF line endings")
	}
	if c.BOM {
		notes = append(notes, "UTF-8 BOM")
	}
	if len(notes) > 0 {
		fmt.Fprintf(w, "; %s", strings.Join(notes, ", "))
	}
	fmt.Fprintln(w)
}

// bar is a progress bar of width cells: [#####-----].
func bar(done, total int64, width int) string {
	if total <= 0 {
		return "[" + strings.Repeat("-", width) + "]"
	}
	n := int(done * int64(width) / total)
	return "[" + strings.Repeat("#", n) + strings.Repeat("-", width-n) + "]"
}

func partsString(up *upv1.UploadStatus) string {
	switch {
	case up.ID == "" && up.InitiatingSince != nil:
		return "initiating"
	case up.ID == "":
		return "not initiated"
	}
	return fmt.Sprintf("%d/%d", up.PartsDone, up.PartCount)
}

func mergeState(up *upv1.UploadStatus) string {
	switch {
	case up.MergedAt != nil:
		return "yes"
	case up.MergingSince != nil:
		return "merging"
	}
	return "no"
}

func expandState(up *upv1.UploadStatus) string {
	var ids []string
	for _, e := range up.Expanded {
		ids = append(ids, e.UserPackageID)
	}
	if up.Expanding != nil {
		ids = append(ids, up.Expanding.UserPackageID+" (expanding)")
	}
	if len(ids) == 0 {
		return "no"
	}
	return strings.Join(ids, ",")
}

func unknownOutcomes(up *upv1.UploadStatus) string {
	var parts []string
	for _, x := range []struct {
		name string
		n    int32
	}{{"initiate", up.UnknownOutcomes}, {"merge", up.MergeUnknownOutcomes}, {"expand", up.ExpandUnknownOutcomes}} {
		if x.n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", x.name, x.n))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func sourceString(s upv1.Source) string {
	switch {
	case s.S3 != nil:
		return fmt.Sprintf("s3://%s/%s (%s)", s.S3.Bucket, s.S3.Key, s.S3.Endpoint)
	case s.HTTP != nil:
		u, _, _ := strings.Cut(s.HTTP.URL, "?") // never a presigned URL's signature
		return u
	}
	return "<none>"
}

func maxLinesString(u *upv1.UserPackageUpload) string {
	if m := u.Spec.File.MaxLinesPerUpload; m != nil {
		if *m == 0 {
			return "unlimited"
		}
		return fmt.Sprint(*m)
	}
	return "500000"
}

func joinInts(xs []int64) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ", ")
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// readyMessage is the Ready condition's message.
func readyMessage(u *upv1.UserPackageUpload) string {
	return condMessage(apimeta.FindStatusCondition(u.Status.Conditions, upv1.ConditionReady))
}
