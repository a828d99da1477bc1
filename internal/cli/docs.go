package cli

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/util/homedir"
)

// HelpMarkdown is the --help of every command, as docs/cli.md shows it:
// one section per command, the root first. The user's home directory (in
// the kubeconfig cache flag's default) is written $HOME, so that the text is
// the same on every machine.
func HelpMarkdown() string {
	root := NewCommand(genericiooptions.NewTestIOStreamsDiscard())
	var b strings.Builder
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || (c.Name() == "help" && c != root) || c.Name() == "completion" {
			return
		}
		var help bytes.Buffer
		c.SetOut(&help)
		c.SetErr(&help)
		_ = c.Help()
		fmt.Fprintf(&b, "### `%s`\n\n```text\n%s```\n\n", c.CommandPath(), help.String())
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	root.InitDefaultHelpCmd()
	walk(root)
	out := strings.TrimRight(b.String(), "\n") + "\n"
	if home := homedir.HomeDir(); home != "" && home != "/" {
		out = strings.ReplaceAll(out, home+"/", "$HOME/")
	}
	return out
}
