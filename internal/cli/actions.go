package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
)

// Exit codes of reconcile --wait.
const (
	// ExitStalled: the object stalled (kstatus Failed): a human must act.
	ExitStalled = 1
	// ExitTimeout: --timeout passed before the object was Ready or stalled.
	ExitTimeout = 2
)

// pollInterval is how often --wait reads the object.
var pollInterval = 500 * time.Millisecond

type reconcileOptions struct {
	*options
	wait    bool
	timeout time.Duration
}

func newReconcileCommand(o *options) *cobra.Command {
	r := &reconcileOptions{options: o}
	cmd := &cobra.Command{
		Use:   "reconcile NAME",
		Short: "Ask the operator to reconcile an upload now, and optionally wait for the outcome",
		Long: `reconcile sets the annotation reconcile.fluxcd.io/requestedAt to now, as
the Argo CD "reconcile" action and flux reconcile do: the operator reads the
file again (a new upload starts only if its bytes changed) and retries a
stalled object; it echoes the value in status.lastHandledReconcileAt.

With --wait it waits until the operator handled the request and the object is
Ready for its generation (kstatus Current), showing a progress bar on a
terminal and plain lines otherwise. It exits 1 when the object stalls (kstatus
Failed: the Stalled message says what to fix) or is suspended, and 2 when
--timeout passes first.`,
		Example: `  kubectl crowdpack reconcile vip-2026-11 -n marketing
  kubectl crowdpack reconcile vip-2026-11 -n marketing --wait --timeout 30m`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.run(cmd.Context(), args[0])
		},
	}
	cmd.Flags().BoolVar(&r.wait, "wait", false, "Wait until the object is Ready (exit 0), stalled (exit 1) or --timeout passed (exit 2).")
	cmd.Flags().DurationVar(&r.timeout, "timeout", 10*time.Minute, "How long --wait waits.")
	return cmd
}

func (r *reconcileOptions) run(ctx context.Context, name string) error {
	c, err := r.connect()
	if err != nil {
		return err
	}
	key := client.ObjectKey{Namespace: c.namespace, Name: name}
	at := time.Now().UTC().Format(time.RFC3339Nano)
	patch := map[string]any{"metadata": map[string]any{"annotations": map[string]string{upv1.ReconcileRequestAnnotation: at}}}
	if err := mergePatch(ctx, c, key, patch); err != nil {
		return err
	}
	fmt.Fprintf(r.streams.Out, "userpackageupload %s/%s: reconcile requested at %s\n", key.Namespace, key.Name, at)
	if !r.wait {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	return waitHandled(ctx, c, key, at, newProgress(r.streams.Out, r.isTerminal()), r.timeout)
}

// waitHandled polls the object until it handled the reconcile request at
// and kstatus reads it Current or Failed.
func waitHandled(ctx context.Context, c *clients, key client.ObjectKey, at string, p *progress, timeout time.Duration) error {
	defer p.done()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		u := &upv1.UserPackageUpload{}
		if err := c.client.Get(ctx, key, u); err != nil {
			if ctx.Err() != nil {
				return timeoutError(key, timeout)
			}
			return err
		}
		st, msg := kstatusOf(u)
		handled := u.Status.LastHandledReconcileAt == at
		p.show(u, st, msg, handled)
		switch {
		case u.Spec.Suspend:
			return &ExitError{Code: ExitStalled, Err: fmt.Errorf("userpackageupload %s is suspended: the request is kept and handled once it is resumed (kubectl crowdpack resume %s)", key, key.Name)}
		case handled && st == status.CurrentStatus:
			p.finish(fmt.Sprintf("userpackageupload %s is Ready: %s", key, msg))
			return nil
		case handled && st == status.FailedStatus:
			return &ExitError{Code: ExitStalled, Err: fmt.Errorf("userpackageupload %s stalled: %s", key, msg)}
		}
		select {
		case <-ctx.Done():
			return timeoutError(key, timeout)
		case <-tick.C:
		}
	}
}

func timeoutError(key client.ObjectKey, timeout time.Duration) error {
	return &ExitError{Code: ExitTimeout, Err: fmt.Errorf("timed out after %s waiting for userpackageupload %s (kubectl crowdpack status %s)", timeout, key, key.Name)}
}

// kstatusOf is what kstatus (Flux, kubectl wait tools, Argo CD's health)
// reads from u, with its message.
func kstatusOf(u *upv1.UserPackageUpload) (status.Status, string) {
	obj := u.DeepCopy()
	obj.SetGroupVersionKind(upv1.GroupVersion.WithKind(uploadKind.Kind))
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return status.UnknownStatus, err.Error()
	}
	res, err := status.Compute(&unstructured.Unstructured{Object: m})
	if err != nil {
		return status.UnknownStatus, err.Error()
	}
	msg := readyMessage(u)
	if msg == "" {
		msg = res.Message
	}
	return res.Status, msg
}

func newSuspendCommand(o *options, suspend bool) *cobra.Command {
	verb, past, field := "suspend", "suspended", "true"
	long := `suspend sets spec.suspend: true, as the Argo CD "suspend" action does: the
operator stops reading the file and calling WeChat Pay for the object and
reports it Suspended (Ready=False, Reconciling=True) until it is resumed. With
GitOps self-heal on, the Git value comes back: suspend in Git instead.`
	if !suspend {
		verb, past, field = "resume", "resumed", "false"
		long = `resume sets spec.suspend: false, as the Argo CD "resume" action does: an
unfinished upload carries on where it stopped, a finished one stays finished.`
	}
	return &cobra.Command{
		Use:     verb + " NAME",
		Short:   fmt.Sprintf("Set spec.suspend: %s on an upload", field),
		Long:    long,
		Example: fmt.Sprintf("  kubectl crowdpack %s vip-2026-11 -n marketing", verb),
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.connect()
			if err != nil {
				return err
			}
			key := client.ObjectKey{Namespace: c.namespace, Name: args[0]}
			if err := mergePatch(cmd.Context(), c, key, map[string]any{"spec": map[string]any{"suspend": suspend}}); err != nil {
				return err
			}
			fmt.Fprintf(o.streams.Out, "userpackageupload %s %s\n", key, past)
			return nil
		},
	}
}

// mergePatch applies a JSON merge patch to an upload.
func mergePatch(ctx context.Context, c *clients, key client.ObjectKey, patch map[string]any) error {
	if err := c.requireServed(uploadKind); err != nil {
		return err
	}
	data, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	u := &upv1.UserPackageUpload{}
	u.Namespace, u.Name = key.Namespace, key.Name
	return c.client.Patch(ctx, u, client.RawPatch(types.MergePatchType, data))
}

// progress shows reconcile --wait's progress: a bar redrawn in place on a
// terminal, a plain line at each change otherwise.
type progress struct {
	w        io.Writer
	terminal bool
	last     string
	drawn    bool
}

func newProgress(w io.Writer, terminal bool) *progress { return &progress{w: w, terminal: terminal} }

func (p *progress) show(u *upv1.UserPackageUpload, st status.Status, msg string, handled bool) {
	var done, total int64
	uploads := ""
	if s := u.Status.Summary; s != nil {
		done, total, uploads = s.PartsDone, s.Parts, s.UploadsProgress
	}
	line := fmt.Sprintf("%s parts %d/%d", st, done, total)
	if uploads != "" {
		line += ", uploads " + uploads
	}
	if msg != "" {
		line += ": " + msg
	}
	if !handled {
		line = "waiting for the operator to take the request; " + line
	}
	if p.terminal {
		text := bar(done, total, 30) + " " + line
		if len(text) > 120 {
			text = text[:117] + "..."
		}
		fmt.Fprintf(p.w, "\r\033[K%s", text)
		p.drawn = true
		return
	}
	if line != p.last {
		fmt.Fprintln(p.w, line)
		p.last = line
	}
}

// done ends a bar drawn in place.
func (p *progress) done() {
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}

func (p *progress) finish(msg string) {
	p.done()
	fmt.Fprintln(p.w, msg)
}
