// Package cli is the kubectl-crowdpack plugin: get, status, reconcile,
// suspend, resume, preview and check for crowdpack's kinds, as the flux CLI
// is for Flux's. It talks to the cluster of the current kubeconfig with the
// project's own API types; preview runs the operator's own line checks,
// hashing and splitting on a local file, with no cluster at all.
package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/crowdpack/crowdpack/internal/version"
)

// ExitError is an error that asks for a given exit code (a failed check, a
// stalled object after reconcile --wait). Its message is already printed
// when Silent is set.
type ExitError struct {
	Code   int
	Err    error
	Silent bool
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// ExitCode is the process exit code for an error Execute returned.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var e *ExitError
	if errors.As(err, &e) {
		return e.Code
	}
	return 1
}

// options are what every command shares: the kubeconfig flags and the
// streams.
type options struct {
	config  *genericclioptions.ConfigFlags
	streams genericiooptions.IOStreams
	// isTerminal says whether out is a terminal (progress bars); a test
	// sets it.
	isTerminal func() bool
}

// Option adjusts the plugin (tests use it).
type Option func(*options)

// WithTerminal says whether the output is a terminal, whatever it is: a
// terminal gets reconcile --wait's progress bar, anything else plain lines.
func WithTerminal(terminal bool) Option {
	return func(o *options) { o.isTerminal = func() bool { return terminal } }
}

// NewCommand returns the plugin's root command writing to streams.
func NewCommand(streams genericiooptions.IOStreams, opts ...Option) *cobra.Command {
	o := &options{
		config:     genericclioptions.NewConfigFlags(false),
		streams:    streams,
		isTerminal: func() bool { return isTerminal(streams.Out) },
	}
	for _, opt := range opts {
		opt(o)
	}
	root := &cobra.Command{
		Use:   "kubectl-crowdpack",
		Short: "Inspect and drive crowdpack's UserPackageUploads, syncs and brands",
		Long: `kubectl crowdpack reads and drives crowdpack's custom resources with the
current kubeconfig, as the flux CLI does for Flux: tables, one-screen status,
reconcile / suspend / resume (the same annotation and field the Argo CD actions
set), a preview of how the operator will check, hash and split a local file,
and a check of the installation.

Installed as a kubectl plugin by putting the kubectl-crowdpack binary on PATH:
then "kubectl crowdpack ..." runs it.`,
		Version:       version.Version,
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl crowdpack"},
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	o.config.AddFlags(root.PersistentFlags())
	root.AddCommand(
		newGetCommand(o),
		newStatusCommand(o),
		newReconcileCommand(o),
		newSuspendCommand(o, true),
		newSuspendCommand(o, false),
		newPreviewCommand(o),
		newCheckCommand(o),
	)
	root.SetVersionTemplate(fmt.Sprintf("kubectl-crowdpack {{.Version}} (commit %s, %s)\n", version.Commit, version.GoVersion()))
	return root
}
