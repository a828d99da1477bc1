package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
)

type getOptions struct {
	*options
	allNamespaces bool
	output        string
}

func newGetCommand(o *options) *cobra.Command {
	g := &getOptions{options: o}
	cmd := &cobra.Command{
		Use:   "get (uploads|syncs|brands) [NAME]",
		Short: "List uploads, syncs or brands as tables, or print them as YAML or JSON",
		Long: `get lists UserPackageUploads (uploads, upu), UserPackageSyncs (syncs, upsync)
or WeChatPayBrands (brands, wxbrand) in the columns kubectl get shows, or prints
them with -o yaml|json. -o wide adds the digest and size of uploads and the
certificate serial of brands.`,
		Example: `  kubectl crowdpack get uploads -n marketing
  kubectl crowdpack get uploads -A -o wide
  kubectl crowdpack get upload vip-2026-11 -n marketing -o yaml
  kubectl crowdpack get brands`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := kindFor(args[0])
			if err != nil {
				return err
			}
			name := ""
			if len(args) == 2 {
				name = args[1]
			}
			return g.run(cmd.Context(), k, name)
		},
	}
	cmd.Flags().BoolVarP(&g.allNamespaces, "all-namespaces", "A", false, "List the objects of every namespace.")
	cmd.Flags().StringVarP(&g.output, "output", "o", "", "Output format: wide, yaml or json (default: a table).")
	return cmd
}

func (g *getOptions) run(ctx context.Context, k kind, name string) error {
	if err := checkOutputFormat(g.output); err != nil {
		return err
	}
	c, err := g.connect()
	if err != nil {
		return err
	}
	if err := c.requireServed(k); err != nil {
		return err
	}
	items, err := g.fetch(ctx, c, k, name)
	if err != nil {
		return err
	}
	// Typed objects come back without their kind; YAML, JSON and the
	// table need it.
	for _, it := range items {
		it.GetObjectKind().SetGroupVersionKind(upv1.GroupVersion.WithKind(k.Kind))
	}
	switch g.output {
	case "yaml", "json":
		return printObjects(g.streams.Out, g.output, items, name != "")
	}
	if len(items) == 0 {
		g.printNoneFound(k, c.namespace)
		return nil
	}
	return printTable(g.streams.Out, k, items, k.Namespaced && g.allNamespaces && name == "", g.output == "wide", time.Now())
}

// checkOutputFormat rejects an -o value before anything is read from the
// cluster.
func checkOutputFormat(output string) error {
	switch output {
	case "", "wide", "yaml", "json":
		return nil
	}
	return fmt.Errorf("unknown output format %q: use wide, yaml or json", output)
}

// fetch reads the object named, or without a name every object of the
// namespace (of all namespaces with -A).
func (g *getOptions) fetch(ctx context.Context, c *clients, k kind, name string) ([]runtime.Object, error) {
	if name == "" {
		return g.listObjects(ctx, c, k)
	}
	obj, err := getObject(ctx, c, k, name)
	if err != nil {
		return nil, err
	}
	return []runtime.Object{obj}, nil
}

// getObject reads one object; a cluster-scoped kind ignores the namespace.
func getObject(ctx context.Context, c *clients, k kind, name string) (client.Object, error) {
	obj, err := newObject(k)
	if err != nil {
		return nil, err
	}
	key := client.ObjectKey{Name: name}
	if k.Namespaced {
		key.Namespace = c.namespace
	}
	if err := c.client.Get(ctx, key, obj); err != nil {
		return nil, err
	}
	return obj, nil
}

// listObjects lists the kind in the current namespace, or in all of them
// with -A or when the kind is cluster-scoped.
func (g *getOptions) listObjects(ctx context.Context, c *clients, k kind) ([]runtime.Object, error) {
	list, err := newList(k)
	if err != nil {
		return nil, err
	}
	var listOpts []client.ListOption
	if k.Namespaced && !g.allNamespaces {
		listOpts = append(listOpts, client.InNamespace(c.namespace))
	}
	if err := c.client.List(ctx, list, listOpts...); err != nil {
		return nil, err
	}
	return apimeta.ExtractList(list)
}

// printNoneFound says on stderr, as kubectl does, that nothing matched,
// naming the namespace searched unless all were.
func (g *getOptions) printNoneFound(k kind, namespace string) {
	if k.Namespaced && !g.allNamespaces {
		fmt.Fprintf(g.streams.ErrOut, "No %s found in %s namespace.\n", k.Resource, namespace)
	} else {
		fmt.Fprintf(g.streams.ErrOut, "No %s found.\n", k.Resource)
	}
}

// newObject and newList are empty objects of a kind the plugin reads.
func newObject(k kind) (client.Object, error) {
	switch k.Kind {
	case uploadKind.Kind:
		return &upv1.UserPackageUpload{}, nil
	case brandKind.Kind:
		return &upv1.WeChatPayBrand{}, nil
	}
	return nil, notInstalledError(k)
}

func newList(k kind) (client.ObjectList, error) {
	switch k.Kind {
	case uploadKind.Kind:
		return &upv1.UserPackageUploadList{}, nil
	case brandKind.Kind:
		return &upv1.WeChatPayBrandList{}, nil
	}
	return nil, notInstalledError(k)
}

// printObjects prints items as YAML or JSON: the object alone when one was
// asked for by name, a v1 List otherwise (as kubectl does).
func printObjects(w io.Writer, format string, items []runtime.Object, single bool) error {
	var v any
	if single && len(items) == 1 {
		v = items[0]
	} else {
		v = struct {
			APIVersion string           `json:"apiVersion"`
			Kind       string           `json:"kind"`
			Items      []runtime.Object `json:"items"`
			Metadata   map[string]any   `json:"metadata"`
		}{"v1", "List", items, map[string]any{"resourceVersion": ""}}
	}
	var data []byte
	var err error
	if format == "json" {
		data, err = json.MarshalIndent(v, "", "    ")
		data = append(data, '\n')
	} else {
		data, err = yaml.Marshal(v)
	}
	if err != nil {
		return err
	}
	_, err = w.Write(data)
	return err
}

// printTable prints the kind's printer columns (those of its CRD).
func printTable(w io.Writer, k kind, items []runtime.Object, withNamespace, wide bool, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	header, rows := tableOf(k, items, wide, now)
	if withNamespace {
		header = append([]string{"NAMESPACE"}, header...)
		for i, it := range items {
			rows[i] = append([]string{it.(client.Object).GetNamespace()}, rows[i]...)
		}
	}
	writeRow(tw, header)
	for _, r := range rows {
		writeRow(tw, r)
	}
	return tw.Flush()
}

func writeRow(w io.Writer, cells []string) {
	for i, c := range cells {
		if i > 0 {
			fmt.Fprint(w, "\t")
		}
		fmt.Fprint(w, c)
	}
	fmt.Fprintln(w)
}

// tableOf gives the columns of the kind's CRD printer columns, in order
// (wide adds those of priority 1).
func tableOf(k kind, items []runtime.Object, wide bool, now time.Time) ([]string, [][]string) {
	var header []string
	var rows [][]string
	switch k.Kind {
	case uploadKind.Kind:
		header, rows = uploadTable(items, wide, now)
	case brandKind.Kind:
		header, rows = brandTable(items, wide, now)
	}
	fillEmptyCells(rows)
	return header, rows
}

// uploadTable is the header and rows of UserPackageUploads.
func uploadTable(items []runtime.Object, wide bool, now time.Time) ([]string, [][]string) {
	header := []string{"NAME", "READY", "STATUS", "UPLOADS", "PARTS", "BRAND", "AGE"}
	if wide {
		header = append(header, "DIGEST", "SIZE")
	}
	var rows [][]string
	for _, it := range items {
		rows = append(rows, uploadRow(it.(*upv1.UserPackageUpload), wide, now))
	}
	return header, rows
}

func uploadRow(u *upv1.UserPackageUpload, wide bool, now time.Time) []string {
	ready := apimeta.FindStatusCondition(u.Status.Conditions, upv1.ConditionReady)
	var uploads, parts, brand string
	if s := u.Status.Summary; s != nil {
		uploads, parts = s.UploadsProgress, s.PartsProgress
	}
	if u.Spec.BrandRef != nil {
		brand = u.Spec.BrandRef.Name
	}
	row := []string{u.Name, condStatus(ready), condMessage(ready), uploads, parts, brand, age(u.CreationTimestamp, now)}
	if wide {
		digest, size := "", ""
		if s := u.Status.Source; s != nil {
			digest, size = s.Digest, strconv.FormatInt(s.Size, 10)
		}
		row = append(row, digest, size)
	}
	return row
}

// brandTable is the header and rows of WeChatPayBrands.
func brandTable(items []runtime.Object, wide bool, now time.Time) ([]string, [][]string) {
	header := []string{"NAME", "READY", "STATUS", "BRAND ID", "ALLOWED", "AGE"}
	if wide {
		header = append(header, "SERIAL")
	}
	var rows [][]string
	for _, it := range items {
		b := it.(*upv1.WeChatPayBrand)
		ready := apimeta.FindStatusCondition(b.Status.Conditions, upv1.ConditionReady)
		row := []string{b.Name, condStatus(ready), condMessage(ready), b.Status.BrandID, string(b.Spec.AllowedNamespaces.From), age(b.CreationTimestamp, now)}
		if wide {
			row = append(row, b.Status.CertificateSerialNo)
		}
		rows = append(rows, row)
	}
	return header, rows
}

// fillEmptyCells writes <none> in empty cells, as kubectl does, so that
// the columns stay aligned for readers that split on blanks.
func fillEmptyCells(rows [][]string) {
	for _, r := range rows {
		for i, c := range r {
			if c == "" {
				r[i] = "<none>"
			}
		}
	}
}

func condStatus(c *metav1.Condition) string {
	if c == nil {
		return ""
	}
	return string(c.Status)
}

func condMessage(c *metav1.Condition) string {
	if c == nil {
		return ""
	}
	return c.Message
}

func age(t metav1.Time, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t.Time))
}
