// kubectl-crowdpack is crowdpack's kubectl plugin (docs/cli.md): on PATH,
// "kubectl crowdpack ..." runs it.
package main

import (
	"errors"
	"fmt"
	"os"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/crowdpack/crowdpack/internal/cli"
)

func main() {
	cmd := cli.NewCommand(genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
	if err := cmd.Execute(); err != nil {
		var e *cli.ExitError
		if !errors.As(err, &e) || !e.Silent {
			fmt.Fprintln(os.Stderr, "Error:", err)
		}
		os.Exit(cli.ExitCode(err))
	}
}
